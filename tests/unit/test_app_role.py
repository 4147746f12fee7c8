"""The application role's password becomes PostgreSQL's SCRAM verifier before it leaves."""

from __future__ import annotations

import base64

import pytest

from order_service.migrations.app_role import scram_verifier

# RFC 7677's example user "user" / password "pencil", salt and iteration count as there: the
# stored and server keys below are the ones any SCRAM-SHA-256 server derives from it.
RFC_SALT = base64.b64decode("W22ZaJ0SNY7soEsUEjb6gQ==")


def test_the_verifier_has_postgresqls_form_and_the_rfcs_keys():
    verifier = scram_verifier("pencil", RFC_SALT)
    assert verifier == (
        "SCRAM-SHA-256$4096:W22ZaJ0SNY7soEsUEjb6gQ==$"
        "WG5d8oPm3OtcPnkdi4Uo7BkeZkBFzpcXkuLmtbsT4qY=:"
        "wfPLwcE6nTWhTAmQ7tl2KeoiWGPlZqQxSrmfPwDl2dU="
    )


def test_each_verifier_has_its_own_salt_and_never_the_password():
    first, second = scram_verifier("s3cret-pw"), scram_verifier("s3cret-pw")
    assert first != second and "s3cret-pw" not in first


def test_a_password_outside_ascii_is_refused():
    with pytest.raises(ValueError, match="ASCII"):
        scram_verifier("pässword")
