"""Domain rules: the alerts people read, a portal's installation and licence, and talking to the portal."""
