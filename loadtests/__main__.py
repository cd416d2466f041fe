"""`python -m loadtests` = `live-loadtest` (see loadtests/cli.py; `notify`: loadtests/notify.py; `media`:
loadtests/media.py; `flushbench`: loadtests/flushbench.py; `nodegen`:
loadtests/nodegen.py; `naive-server`: loadtests/naive_server.py)."""
import sys

from loadtests.cli import main as cli_main


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["notify"]:
        from loadtests.notify import main as notify

        return notify(argv[1:])
    if argv[:1] == ["media"]:
        from loadtests.media import main as media

        return media(argv[1:])
    if argv[:1] == ["nodegen"]:
        from loadtests.nodegen import main as nodegen

        return nodegen(argv[1:])
    if argv[:1] == ["flushbench"]:
        from loadtests.flushbench import main as flushbench

        return flushbench(argv[1:])
    if argv[:1] == ["naive-server"]:
        from loadtests.naive_server import main as naive_server

        return naive_server(argv[1:])
    return cli_main(argv)


if __name__ == "__main__":
    raise SystemExit(main())
