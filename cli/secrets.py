"""`hub secrets`: the credential encryption keys' rotation.

Shop credentials (and the PKCE verifiers of authorizations in flight) are encrypted with the
first key of ``HUB_SECRET_KEYS`` (embedded mode without it: the key file in the data folder)
and decrypted with any key of the list. Rotating a key:

1. ``hub keys generate``; put the new key first in ``HUB_SECRET_KEYS``, keep the old ones after
   it (embedded mode: the key file's content), and restart every process (API, workers, relay,
   scheduler): a process without the new key could not read what the rotation writes;
2. ``hub secrets rotate``: every encrypted value is re-encrypted under the new key;
3. ``hub secrets rotate --check`` says nothing is left under an old key: drop the old keys from
   ``HUB_SECRET_KEYS`` and restart again.
"""

from __future__ import annotations

import typer

from cli.output import fail, hub, json_option, print_json, print_table

app = typer.Typer(
    help="Credential encryption: re-encrypt under the newest key.", no_args_is_help=True
)

COLUMNS = ["column", "encrypted", "current", "rotated", "unreadable", "busy"]
CHECK_COLUMNS = ["column", "encrypted", "current", "stale", "unreadable"]


@app.command("rotate")
def rotate(
    check: bool = typer.Option(
        False,
        "--check",
        help="Change nothing: count the values not under the newest key (exit 1 if any).",
    ),
    batch_size: int = typer.Option(200, min=1, max=10_000, help="Rows read per batch."),
    as_json: bool = json_option(),
) -> None:
    """Re-encrypt every stored credential under the newest key of HUB_SECRET_KEYS (the first).

    Each row is re-read and rewritten in its own short transaction, under the lock the token
    refresh takes, so a concurrent refresh is never lost; rows already under the newest key are
    left alone, so running it again is harmless. Exit 1 if a value could not be decrypted with
    any configured key, or could not be rewritten (run it again)."""
    from hub.infrastructure.crypto import FernetCredentialCipher
    from hub.infrastructure.key_rotation import check_all, rotate_all

    with hub() as container:
        cipher = container.cipher
        if not isinstance(cipher, FernetCredentialCipher):
            fail("the configured credential cipher cannot rotate keys")
        if check:
            reports = check_all(container.engine, cipher, batch_size=batch_size)
        else:
            reports = rotate_all(container.engine, cipher, container.uow, batch_size=batch_size)
        keys = cipher.key_count
    if as_json:
        print_json({"keys": keys, "check": check, "columns": [r.as_dict() for r in reports]})
    else:
        rows = [report.as_dict() for report in reports]
        print_table(rows, CHECK_COLUMNS if check else COLUMNS, empty="nothing encrypted")
    unreadable = sum(report.unreadable for report in reports)
    if unreadable:
        where = "; ".join(
            f"{r.name} ids {', '.join(map(str, r.unreadable_ids[:20]))}"
            for r in reports
            if r.unreadable
        )
        fail(
            f"{_values(unreadable)} cannot be decrypted with any of the {keys} configured "
            f"keys ({where}): put back the key they were encrypted with, after the newest one"
        )
    if check:
        stale = sum(report.stale for report in reports)
        if stale:
            fail(f"{_values(stale)} still under an older key: run `hub secrets rotate`")
        if not as_json:
            typer.echo(
                "every encrypted value is under the newest key"
                + ("; the older keys can be dropped from HUB_SECRET_KEYS" if keys > 1 else "")
            )
        return
    busy = sum(report.busy for report in reports)
    if busy:
        fail(f"{_values(busy)} kept changing while rotating: run it again")
    if not as_json:
        rotated = sum(report.rotated for report in reports)
        typer.echo(
            f"re-encrypted {_values(rotated)} under the newest key; the others already were"
            + (
                "; the older keys can be dropped from HUB_SECRET_KEYS once every process runs "
                "with the new list and `hub secrets rotate --check` passes"
                if keys > 1
                else ""
            )
        )


def _values(count: int) -> str:
    return f"{count} encrypted value{'' if count == 1 else 's'}"
