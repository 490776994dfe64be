"""`seq2seq`: the command line of the client SDK.

    seq2seq translate "A tool to compress files" --to fr
    seq2seq summarize "$(cat long.txt)" --stream
    seq2seq answer "Who maintains xfonts-terminus?" --context package.txt
    seq2seq models --json

Errors print one line, `seq2seq: error: ...`, and exit 2 (usage or local input) or 1 (the
RPC failed: the line names the gRPC status and the server's message). The commands live in
`seq2seq_client.commands`; this module only prepares the process before gRPC is imported.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence


def main(argv: Sequence[str] | None = None) -> int:
    # gRPC core reads GRPC_VERBOSITY once, when it is imported; its own log lines (e.g.
    # "Handshake failed") would break the one-line error. GRPC_VERBOSITY=INFO brings them back.
    os.environ.setdefault("GRPC_VERBOSITY", "NONE")
    from seq2seq_client.commands import main as run_command

    return run_command(argv)


if __name__ == "__main__":
    sys.exit(main())
