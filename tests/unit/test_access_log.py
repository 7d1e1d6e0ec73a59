"""The access log's masking (issue 17): no token, password or dlr secret survives in a line."""

from __future__ import annotations

from urllib.parse import parse_qs

from pombo.api.access import masked_path, masked_query


def test_query_credentials_are_masked_and_the_rest_kept() -> None:
    q = parse_qs(masked_query(b"tsid=abcdefghijklmnopqrst&dest=5511&password=hunter22&SID=0123456789&pass=x&m=oi"))
    assert q["tsid"] == ["abcdefghij…"] and q["SID"] == ["01234…"]
    assert q["password"] == ["***"] and q["pass"] == ["***"]
    assert q["dest"] == ["5511"] and q["m"] == ["oi"]
    assert masked_query(b"") == ""
    assert "secret-value-123456" not in masked_query(b"token=secret-value-123456&token=secret-value-123456")


def test_a_delivery_report_path_loses_its_secret() -> None:
    assert masked_path("/dlr/velip/s3cret/more") == "/dlr/velip/***"
    assert masked_path("/dlr/velip/s3cret") == "/dlr/velip/***"
    assert masked_path("/api/v2/MakeSMS.php") == "/api/v2/MakeSMS.php"
    assert masked_path("/dlr") == "/dlr"
