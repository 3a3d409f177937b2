"""Recovery: deliveries kept when we fail (parcels), run again (replay), and alerts published late
(redrive)."""
