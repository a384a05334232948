#!/usr/bin/env python3
"""Four pbft-node replica processes wired together by a plain line router.

Starts `pbft-node --mode replica --auth none` four times, passes every line
a node prints to the node it is addressed to, and plays one client: it
sends the same request to every replica, then asks each for the status of
the number the request got. Each replica answers in turn: the request
acknowledged, then prepares_received 3, commits_received 4, executed true.

Build the node first (cargo build -p pbft-node); the script finds it in the
repository's target/debug (or CARGO_TARGET_DIR's), wherever it is run from. Only the Python
standard library is used.
"""

import argparse
import json
import os
import queue
import subprocess
import sys
import threading
import time

NODES = ["n1", "n2", "n3", "n4"]
REPOSITORY = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# Where cargo build puts it: CARGO_TARGET_DIR if set (relative to the
# repository, as cargo takes it), else the repository's target/.
TARGET = os.path.join(REPOSITORY, os.environ.get("CARGO_TARGET_DIR") or "target")
DEFAULT_BINARY = os.path.join(TARGET, "debug", "pbft-node")


def arguments():
    parser = argparse.ArgumentParser(
        description="Run four pbft-node replica processes behind a line router, "
        "send one request to every replica and print what each reports.",
        epilog="Build the node first: cargo build -p pbft-node",
    )
    parser.add_argument(
        "binary",
        nargs="?",
        default=DEFAULT_BINARY,
        help="the pbft-node binary (default: debug/pbft-node in CARGO_TARGET_DIR, "
        "or in this repository's target/)",
    )
    return parser.parse_args()


def start(binary):
    procs, lines = {}, queue.Queue()
    for node in NODES:
        proc = subprocess.Popen(
            [binary, "--mode", "replica", "--auth", "none", "--tick-ms", "5"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
            bufsize=1,
        )
        procs[node] = proc
        threading.Thread(target=lambda p=proc: [lines.put(l) for l in p.stdout], daemon=True).start()
    return procs, lines


def main():
    binary = arguments().binary
    if not os.path.isfile(binary) or not os.access(binary, os.X_OK):
        sys.exit(f"no pbft-node binary at {binary}: build it with `cargo build -p pbft-node`, "
                 "or give its path")
    procs, lines = start(binary)
    replies = []

    def send(dest, line):
        procs[dest].stdin.write(line + "\n")
        procs[dest].stdin.flush()

    def client(dest, body, src="c1"):
        send(dest, json.dumps({"src": src, "dest": dest, "body": body}, separators=(",", ":")))

    def route(line):
        # A line for a node goes to its stdin; anything else is a client reply.
        message = json.loads(line)
        if message["dest"] in NODES:
            send(message["dest"], line)
        else:
            replies.append(message)

    def route_until(done, limit=10.0):
        deadline = time.time() + limit
        while not done():
            if time.time() > deadline:
                sys.exit("timed out waiting for replies")
            try:
                route(lines.get(timeout=0.05))
            except queue.Empty:
                continue

    def reply(dest, in_reply_to):
        return next((r for r in replies if r["dest"] == dest and r["body"].get("in_reply_to") == in_reply_to), None)

    for node in NODES:
        client(node, {"type": "init", "msg_id": 1, "node_id": node, "node_ids": NODES}, src="c0")
    route_until(lambda: sum(1 for r in replies if r["dest"] == "c0") == 4)

    request = {"type": "pbft_request", "operation": "set x=42", "client": "c1", "timestamp": 1}
    for i, node in enumerate(NODES):
        client(node, dict(request, msg_id=10 + i))
    route_until(lambda: all(reply("c1", 10 + i) for i in range(4)))
    # Keep routing until no node has printed anything for 0.3 s, so the
    # commits reach every replica before it is asked.
    while True:
        try:
            route(lines.get(timeout=0.3))
        except queue.Empty:
            break

    for i, node in enumerate(NODES):
        ack = reply("c1", 10 + i)
        client(node, {"type": "pbft_status", "msg_id": 20 + i, "sequence_number": ack["body"]["sequence_number"]})
        route_until(lambda: reply("c1", 20 + i) is not None)
        status = reply("c1", 20 + i)["body"]
        print(f"{node}: acknowledged #{ack['body']['sequence_number']} in view {ack['body']['view']}")
        print(
            f"{node}: phase {status['phase']}, prepares_received: {status['prepares_received']}, "
            f"commits_received: {status['commits_received']}, executed: {str(status['executed']).lower()}"
        )
    for proc in procs.values():
        proc.stdin.close()
        proc.wait(timeout=5)


if __name__ == "__main__":
    main()
