"""``idp keys list|status|import|rotate|revoke|rewrap``: signing keys, over :mod:`idp.admin.keys`.

``rewrap`` is the CLI's alone: it reads the new key-encryption key from a file on this machine
and replaces the key file there, which no remote caller should do.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from idp.admin import keys
from idp.admin.documents import key_document, ring_document, rotation_document
from idp.admin.keys import MAX_PEM_BYTES
from idp.cli.base import (
    Column,
    CommandError,
    Commands,
    emit,
    finish,
    group,
    listing,
    read,
    run,
)
from idp.config import ConfigError, Settings, read_key_file, replace_key_file
from idp.keyring.material import KeyImportError

COLUMNS: list[Column] = [
    ("KID", lambda d: d["kid"]),
    ("ALG", lambda d: d["alg"]),
    ("STATE", lambda d: d["state"]),
    ("CREATED", lambda d: d["created_at"]),
    ("ACTIVATED", lambda d: d["activated_at"]),
    ("RETIRED", lambda d: d["retired_at"]),
    ("REVOKED", lambda d: d["revoked_at"]),
    (
        "NEXT",
        lambda d: d["next_transition"] and f"{d['next_transition']} at {d['next_transition_at']}",
    ),
]
cmd_list = listing(keys.list_keys, lambda listed: key_document(*listed), COLUMNS, "no keys")


def cmd_status(args: argparse.Namespace, settings: Settings) -> None:
    documents = [ring_document(r) for r in read(settings, keys.key_ring_status)]
    emit(documents, args.json, lambda ds: "\n".join(d["summary"] for d in ds))


def cmd_import(args: argparse.Namespace, settings: Settings) -> None:
    try:
        with open(args.pem, "rb") as handle:
            pem = handle.read(MAX_PEM_BYTES + 1)
    except OSError as exc:
        raise CommandError(f"--pem {args.pem}: {exc.strerror or exc}") from None
    if len(pem) > MAX_PEM_BYTES:
        raise CommandError(f"--pem {args.pem}: larger than a PEM private key can be")
    try:
        record = run(settings, lambda ctx: keys.import_key(ctx, args.alg, pem))
    except KeyImportError as exc:
        raise CommandError(f"--pem {args.pem}: {exc}") from None
    emit(
        key_document(record),
        args.json,
        lambda d: (
            f"imported {d['alg']} key {d['kid']} as next; it starts signing at a "
            "rotation once published for IDP_KEY_PREPUBLISH"
        ),
    )


def cmd_rotate(args: argparse.Namespace, settings: Settings) -> None:
    results = [rotation_document(r) for r in run(settings, lambda c: keys.rotate_now(c, args.alg))]
    for result in results:
        if result["warning"]:
            sys.stderr.write(f"idp: warning: {result['warning']}\n")
    document: Any = results[0] if len(results) == 1 else results

    def text(_: Any) -> str:
        return "\n".join(
            f"{r['alg']}: active {r['active_kid']}, retired {r['retired_kid'] or '-'}, "
            f"next {r['next_kid']}"
            for r in results
        )

    emit(document, args.json, text)


def cmd_revoke(args: argparse.Namespace, settings: Settings) -> None:
    record = run(settings, lambda ctx: keys.revoke_key(ctx, args.kid))
    emit(
        key_document(record),
        args.json,
        lambda d: f"revoked {d['alg']} key {d['kid']} at {d['revoked_at']}",
    )


def cmd_rewrap(args: argparse.Namespace, settings: Settings) -> None:
    new_file = Path(args.new_key_file)
    try:
        new_key = read_key_file("--new-key-file", new_file)
    except ConfigError as exc:
        raise CommandError(str(exc)) from None
    rewrapped = run(settings, lambda ctx: keys.rewrap_keys(ctx, new_key))
    key_file = settings.key_encryption_key_file
    if key_file is not None:
        try:
            replace_key_file(key_file, new_file.read_text())
        except OSError as exc:
            raise CommandError(
                f"the keys are sealed under the new key, but {key_file} could not be replaced "
                f"({exc.strerror or exc}): copy {new_file} there now"
            ) from None
        where = f"{key_file} now holds it"
    else:
        where = "set IDP_KEY_ENCRYPTION_KEY to it for every server and command"
    document = {
        "rewrapped_kids": [k.kid for k in rewrapped],
        "key_file": str(key_file) if key_file is not None else None,
    }
    emit(
        document,
        args.json,
        lambda d: (
            f"re-sealed {len(d['rewrapped_kids'])} signing key(s) under the new key-encryption "
            f"key; {where}; restart every server"
        ),
    )


def add_commands(commands: Commands) -> None:
    """``idp keys ...``."""
    keys_group = group(commands, "keys", "manage signing keys")
    finish(keys_group.add_parser("list", help="list keys"), cmd_list, writes=False)
    status = keys_group.add_parser(
        "status", help="say when each ring rotates next and whether verifiers are safe"
    )
    finish(status, cmd_status, writes=False)
    key_import = keys_group.add_parser("import", help="import a PEM private key as the next key")
    key_import.add_argument(
        "--alg", choices=["RS256", "ES256"], required=True, help="the key's ring: %(choices)s"
    )
    key_import.add_argument(
        "--pem",
        required=True,
        metavar="FILE",
        help="an unencrypted PEM private key (PKCS#8 or traditional)",
    )
    finish(key_import, cmd_import)
    rotate = keys_group.add_parser("rotate", help="rotate signing keys now")
    rotate.add_argument(
        "--alg",
        choices=["RS256", "ES256"],
        help="rotate only this ring: %(choices)s (default: every configured ring)",
    )
    finish(rotate, cmd_rotate)
    revoke = keys_group.add_parser("revoke", help="revoke one key at once")
    revoke.add_argument("kid", help="the key's id (kid)")
    finish(revoke, cmd_revoke)
    rewrap = keys_group.add_parser(
        "rewrap", help="seal every signing key anew under a new key-encryption key"
    )
    rewrap.add_argument(
        "--new-key-file",
        required=True,
        metavar="FILE",
        help="a file holding the new key (from idp generate-kek), never the key itself",
    )
    finish(rewrap, cmd_rewrap)
