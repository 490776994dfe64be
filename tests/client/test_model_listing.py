"""A model's description (bundle.json) in every listing: ListModels, /v1/models, the SDK and
`seq2seq models`."""

from __future__ import annotations

import json
from pathlib import Path

from seq2seq_client import Seq2SeqClient
from tests.client.conftest import ServerThread, run_cli
from tests.integration.conftest import copy_repository, http, rewrite_manifest

DESCRIBED = "Debian package descriptions, English to French; not everyday English"


def test_the_description_reaches_every_listing(tmp_path: Path) -> None:
    repository = copy_repository(tmp_path, "translate-en-fr", "summarize-en")
    rewrite_manifest(repository / "translate-en-fr" / "1", description=DESCRIBED)
    with ServerThread(model_repository=repository, engine_mode="thread") as served:
        assert served.server is not None
        with Seq2SeqClient(served.address) as client:
            sdk = {m.name: m.description for m in client.list_models()}
        assert sdk == {"translate-en-fr": DESCRIBED, "summarize-en": ""}
        status, body = http(served.server.http_port, "/v1/models")
        assert status == 200
        assert {m["name"]: m["description"] for m in body["models"]} == sdk
        listed = run_cli("models", "--json", "--target", served.address)
        assert {m["name"]: m["description"] for m in json.loads(listed.stdout)} == sdk
        table = run_cli("models", "--target", served.address).stdout.splitlines()
        assert table[0].split()[-1] == "FOR"
        assert next(row for row in table if row.startswith("translate-en-fr")).endswith(DESCRIBED)
