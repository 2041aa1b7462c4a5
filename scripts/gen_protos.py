"""Regenerate the committed Python stubs from protos/vantage/v1/*.proto.

Usage: python scripts/gen_protos.py [--check]

--check regenerates into a temporary folder and exits 1 when the committed stubs differ
(CI runs it so the contract and the stubs cannot drift apart).
"""

from __future__ import annotations

import argparse
import filecmp
import shutil
import sys
import tempfile
from pathlib import Path

from grpc_tools import protoc

ROOT = Path(__file__).resolve().parent.parent
PROTO_DIR = ROOT / "protos" / "vantage" / "v1"


def generate(out_root: Path) -> list[Path]:
    protos = sorted(PROTO_DIR.glob("*.proto"))
    include = Path(protoc.__file__).parent / "_proto"
    for proto in protos:
        rel = proto.relative_to(ROOT)
        code = protoc.main(
            [
                "grpc_tools.protoc",
                f"-I{ROOT}",
                f"-I{include}",
                f"--python_out={out_root}",
                f"--pyi_out={out_root}",
                f"--grpc_python_out={out_root}",
                str(rel),
            ]
        )
        if code != 0:
            raise SystemExit(f"protoc failed on {rel} (exit {code})")
    return sorted((out_root / "protos" / "vantage" / "v1").glob("*_pb2*.py*"))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="fail when committed stubs drift")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        generated = generate(Path(tmp))
        drifted = []
        for path in generated:
            committed = PROTO_DIR / path.name
            if args.check:
                if not committed.exists() or not filecmp.cmp(path, committed, shallow=False):
                    drifted.append(path.name)
            else:
                shutil.copyfile(path, committed)
        if drifted:
            print(f"generated stubs drifted from protos: {', '.join(drifted)}; "
                  "run python scripts/gen_protos.py", file=sys.stderr)
            return 1
    print("stubs up to date" if args.check else f"wrote {len(generated)} files")
    return 0


if __name__ == "__main__":
    sys.exit(main())
