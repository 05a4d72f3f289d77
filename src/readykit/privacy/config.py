"""The personal-data section of the settings (see readykit.section)."""

from __future__ import annotations

from typing import Annotated

from pydantic import AfterValidator, Field, SecretStr

from readykit.privacy.keys import check_secret
from readykit.records.config import names_a_file
from readykit.section import Section, parsed_by


def _secret(secret: SecretStr | None) -> None:
    if secret is not None:
        check_secret(secret.get_secret_value())


class PrivacyConfig(Section):
    """readykit.privacy: the export and erasure endpoints, their keys and archives."""

    privacy_endpoints: bool = Field(
        default=True, description="Serve /privacy/export and /privacy/erase to logged-in users."
    )
    privacy_secret: Annotated[SecretStr | None, AfterValidator(parsed_by(_secret))] = Field(
        default=None,
        description="Signs download links and seals subject ids; unset: a key file is created.",
    )
    privacy_key_path: Annotated[
        str, AfterValidator(parsed_by(names_a_file("privacy_key_path", ".readykit/privacy.key")))
    ] = Field(
        default=".readykit/privacy.key",
        description="Key file created once when no privacy secret is set.",
    )
    privacy_archive_dir: str = Field(
        default=".readykit/exports",
        description="Where export archives are kept until their link expires.",
    )
    privacy_link_ttl_h: float = Field(default=72.0, gt=0, description="Download links expire.")
    privacy_exports_per_day: int = Field(
        default=1, ge=1, description="Exports a subject may ask for per day."
    )
