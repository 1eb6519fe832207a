"""`agents.pac` exports the agent's main names, as Acme's agents do."""

import pytest

import agents.pac
from agents.pac import acting
from agents.pac import builder
from agents.pac import config
from agents.pac import learning
from agents.pac import networks


def test_package_names_are_the_modules_objects():
  assert agents.pac.PACBuilder is builder.PACBuilder
  assert agents.pac.PACConfig is config.PACConfig
  assert agents.pac.NetworkConfig is config.NetworkConfig
  assert agents.pac.ConfigError is config.ConfigError
  assert agents.pac.make_networks is networks.make_networks
  assert agents.pac.PACNetworks is networks.PACNetworks
  assert agents.pac.PACLearner is learning.PACLearner
  assert agents.pac.make_policy is acting.make_policy
  assert set(agents.pac.__all__) <= set(dir(agents.pac))


def test_an_unknown_name_is_an_attribute_error():
  with pytest.raises(AttributeError, match='no attribute'):
    agents.pac.PACAgent  # pylint: disable=pointless-statement
