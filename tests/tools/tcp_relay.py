"""Relay TCP ports from one address to another (the same port numbers).

    tcp_relay.py [--ready-file FILE] LISTEN_ADDR TARGET_ADDR PORT...

Lets SSH test hosts in network namespaces reach the loopback-only emulator under the name in its
certificate (127.0.0.1): in the namespace 127.0.0.1:P -> gateway:P, on the controller gateway:P -> 127.0.0.1:P.
Bytes pass through untouched (TLS included). With --ready-file, the file is written once every port listens.

The one relay of the test suites: tests/reliability/netns.py, tests/integration/targets/rotation/fleet.py
(and through it bench/), and extensions/molecule/rotation start this file.
"""
import asyncio
import os
import sys

PATH = os.path.abspath(__file__)


def command(listen, target, ports, python=None, ready_file=None):
    """argv that runs this relay (for callers that spawn it)."""
    argv = [python or sys.executable, PATH]
    if ready_file:
        argv += ["--ready-file", ready_file]
    return argv + [listen, target] + [str(p) for p in ports]


async def _pipe(reader, writer):
    try:
        while True:
            data = await reader.read(65536)
            if not data:
                break
            writer.write(data)
            await writer.drain()
    except (ConnectionError, OSError):
        pass
    finally:
        try:
            writer.close()
        except (ConnectionError, OSError):
            pass


def _handler(target, port):
    async def handle(reader, writer):
        try:
            up_reader, up_writer = await asyncio.open_connection(target, port)
        except OSError:
            writer.close()
            return
        await asyncio.gather(_pipe(reader, up_writer), _pipe(up_reader, writer))
    return handle


async def main(listen, target, ports, ready_file=None):
    servers = []
    for port in ports:
        for _unused in range(50):
            try:
                servers.append(await asyncio.start_server(_handler(target, port), listen, port))
                break
            except OSError:
                await asyncio.sleep(0.1)
        else:
            raise SystemExit("cannot listen on %s:%d" % (listen, port))
    if ready_file:
        with open(ready_file, "w", encoding="ascii") as handle:
            handle.write("%d\n" % os.getpid())
    await asyncio.gather(*(s.serve_forever() for s in servers))


def cli(argv):
    ready_file = None
    if argv[:1] == ["--ready-file"]:
        ready_file, argv = argv[1], argv[2:]
    if len(argv) < 3:
        raise SystemExit("usage: tcp_relay.py [--ready-file FILE] LISTEN_ADDR TARGET_ADDR PORT...")
    asyncio.run(main(argv[0], argv[1], [int(p) for p in argv[2:]], ready_file))


if __name__ == "__main__":
    cli(sys.argv[1:])
