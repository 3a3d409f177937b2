"""The simulated year files each wrong hour under a cause the docs bound, or as unexplained."""

from types import SimpleNamespace

from local.play import new_portal
from local.simulate import GRANTED, INSTALL_PARKED, REFUSED, UNEXPLAINED, Life, Portal, Simulation

DOMAIN = "sim00001-abcdef.bitrix24.com"


def _reinstalled(answered: list[int]) -> tuple[Simulation, Portal]:
    simulation = Simulation(portals=1, days=1, seed=1, faults=False)
    simulation.fake = SimpleNamespace(portals={}, app_code="app")
    made = new_portal(simulation.fake, DOMAIN, paid_until=10_000_000.0)
    made.installed = True
    life = Life(DOMAIN, 0.0, 14, 30, "on_time", 1, 100.0, True, 200.0)
    return simulation, Portal(life, member_id=made.member_id, answered=answered)


def test_a_reinstall_answered_502_is_parked_until_its_replay_not_unexplained():
    simulation, portal = _reinstalled([200, 502])
    assert simulation._cause(portal, GRANTED, REFUSED, 300.0, "not_installed") == INSTALL_PARKED


def test_a_reinstall_answered_200_yet_shown_not_installed_stays_unexplained():
    simulation, portal = _reinstalled([502, 200])
    assert simulation._cause(portal, GRANTED, REFUSED, 300.0, "not_installed") == UNEXPLAINED
