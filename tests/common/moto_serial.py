"""moto's server, handling one request at a time.

DynamoDB's conditional writes are atomic. moto's check the condition and then write,
with no lock between, so two leases taken in the same few milliseconds by different
threads could both succeed. Serialising the requests restores what DynamoDB promises.
The command line is moto_server's own.
"""
import threading

import moto.server as server

_lock = threading.Lock()
_run_simple = server.run_simple


def _serial(host, port, app, **options):
    def one_at_a_time(environ, start_response):
        with _lock:
            return list(app(environ, start_response))

    _run_simple(host, port, one_at_a_time, **options)


server.run_simple = _serial

if __name__ == "__main__":
    server.main()
