"""Relay TCP ports from one address to another (the same port numbers): relay.py LISTEN_ADDR TARGET_ADDR PORT...

Lets SSH test hosts in network namespaces reach the loopback-only emulator under the name in its
certificate (127.0.0.1): in the namespace 127.0.0.1:P -> gateway:P, on the controller gateway:P -> 127.0.0.1:P.
"""
import asyncio
import sys


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


async def main(listen, target, ports):
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
    await asyncio.gather(*(s.serve_forever() for s in servers))


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2], [int(p) for p in sys.argv[3:]]))
