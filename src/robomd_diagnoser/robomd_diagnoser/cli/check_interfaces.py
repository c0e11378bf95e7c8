"""``robomd check-interfaces``: round-trip every robomd_msgs interface between two processes."""

from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "check-interfaces",
        help="round-trip every message, service and action of robomd_msgs over DDS",
        description="Starts an echo node in a second process and round-trips every robomd_msgs "
                    "message, service and the ExecuteRollout action (feedback, result, cancel), "
                    "printing what was sent and received.")
    p.add_argument("--timeout", type=float, default=20.0,
                   help="seconds to wait for each exchange (default: %(default)s)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from robomd_diagnoser.ros.interface_check import (
        CheckFailed,
        run_check,
        start_echo_process,
        stop_process,
    )

    echo = start_echo_process()
    print(f"started interface_echo node (pid {echo.pid}); round-tripping robomd_msgs over DDS")
    try:
        run_check(timeout=args.timeout)
    except CheckFailed as exc:
        print(f"FAILED: {exc}")
        return 1
    finally:
        stop_process(echo)
    print("every robomd_msgs interface round-tripped between two processes")
    return 0
