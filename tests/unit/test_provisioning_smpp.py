"""`kind: smpp` in the provisioning file (SPEC §9, §12)."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from pombo.domain.provisioning import Provisioning

CLARO = {"name": "claro", "kind": "smpp", "host": "smsc.example.net", "port": 2775, "system_id": "u",
         "password": "p4ss", "binds": 2, "window": 20, "throughput": 200}


def test_smpp_entry_with_defaults():
    spec = Provisioning.model_validate({"connections": [CLARO]}).connections[0]
    config = spec.to_config(dlr_secret="k")
    assert (config.url, config.username, config.password) == ("smpp://smsc.example.net:2775", "u", "p4ss")
    assert config.options == {"host": "smsc.example.net", "port": 2775, "system_type": "", "binds": 2,
                              "window": 20, "throughput": 200.0, "tls": False, "enquire_link": 30,
                              "source_addr": "", "dest_ton": 1, "dest_npi": 1}
    assert "p4ss" not in repr(spec) and "p4ss" not in repr(config)


@pytest.mark.parametrize("bad", [{"binds": 0}, {"window": 0}, {"port": 70000}, {"system_id": ""},
                                 {"system_id": "x" * 16}, {"url": "http://x"}, {"host": "a b"},
                                 {"tls": "maybe"}, {"enquire_link": 0}, {"password": "sé"}])
def test_bad_smpp_settings_are_refused(bad):
    with pytest.raises(ValidationError):
        Provisioning.model_validate({"connections": [CLARO | bad]})
