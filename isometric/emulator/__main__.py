"""python -m isometric.emulator: serve until interrupted, printing what a client needs."""

import argparse
import logging
import os
import signal
import sys
import threading
from dataclasses import fields

from isometric.emulator.credentials import DEFAULT_CLIENT_SECRET
from isometric.emulator.faults import Settings
from isometric.emulator.server import Emulator

DEFAULT_PORT = 8765


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m isometric.emulator", description="A local Isometric API emulator."
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=DEFAULT_PORT, help="0: any free port")
    parser.add_argument(
        "--seed", type=int, default=0, metavar="N", help="start with N batches (new state only)"
    )
    parser.add_argument("--state", metavar="FILE", help="keep the state in FILE across restarts")
    parser.add_argument(
        "--client-secret",
        default=os.environ.get("ISOMETRIC_EMULATOR_CLIENT_SECRET", DEFAULT_CLIENT_SECRET),
        help="default: $ISOMETRIC_EMULATOR_CLIENT_SECRET or %(default)s",
    )
    parser.add_argument(
        "--access-token",
        default=os.environ.get("ISOMETRIC_EMULATOR_ACCESS_TOKEN"),
        help="default: $ISOMETRIC_EMULATOR_ACCESS_TOKEN or a JWT generated with the state",
    )
    parser.add_argument(
        "--facility", action="append", default=[], metavar="ID", help="accept this facility id"
    )
    parser.add_argument(
        "--feedstock-type",
        action="append",
        default=[],
        metavar="ID",
        help="add this feedstock type",
    )
    parser.add_argument("--random-seed", type=int, help="make faults by chance repeatable")
    parser.add_argument("--verbose", action="store_true", help="log every request")
    behaviour = parser.add_argument_group("behaviour (change it later: POST /_emulator/config)")
    for option in fields(Settings):
        flag = option.metadata["flag"] or "--" + option.name.replace("_", "-")
        help_text = option.metadata["help"]
        if isinstance(option.default, bool):
            # The flag turns a setting away from its default, whichever that is.
            action = "store_false" if option.default else "store_true"
            behaviour.add_argument(
                flag, dest=option.name, action=action, default=argparse.SUPPRESS, help=help_text
            )
        else:
            option_type = type(option.default)
            behaviour.add_argument(
                flag, dest=option.name, type=option_type, default=argparse.SUPPRESS, help=help_text
            )
    return parser


def _print_banner(emulator: Emulator) -> None:
    organisation = emulator.organisation
    lines = [
        f"Isometric emulator on {emulator.base_url}",
        f"  X-Client-Secret: {emulator.client_secret}",
        f"  Authorization:   Bearer {emulator.access_token}",
        f"  Organisation:    {organisation['id']} {organisation['name']}",
        *(f"  Facility:        {item['id']} {item['name']}" for item in emulator.facilities()),
        *(f"  Feedstock type:  {item['id']} {item['name']}" for item in emulator.feedstock_types()),
        f"  Control:         {emulator.url}/_emulator/ (stats, config, reset, seed, facilities)",
        "Ctrl-C stops it.",
    ]
    print("\n".join(lines), flush=True)


def main(argv: list[str] | None = None) -> None:
    parser = _parser()
    args = parser.parse_args(argv)
    logging.basicConfig(format="%(asctime)s %(message)s")
    if args.verbose:
        logging.getLogger("isometric").setLevel(logging.DEBUG)
    setting_names = {option.name for option in fields(Settings)}
    behaviour = {name: value for name, value in vars(args).items() if name in setting_names}
    try:
        emulator = Emulator(
            args.host,
            args.port,
            client_secret=args.client_secret,
            access_token=args.access_token,
            seed=args.seed,
            state_file=args.state,
            facility_ids=args.facility,
            feedstock_type_ids=args.feedstock_type,
            random_seed=args.random_seed,
        )
        emulator.configure(**behaviour)
    except ValueError as exc:
        parser.error(str(exc))
    # Stop cleanly on SIGTERM (docker stop, process managers) as on Ctrl-C.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    emulator.start()
    _print_banner(emulator)
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        pass
    finally:
        emulator.stop()


if __name__ == "__main__":
    main()
