"""The few JACK calls the runtime makes, through ctypes on the system's libjack.

The runtime installs libjack (the jackd2 / libjack-jackd2-0 packages) but not the JACK-Client
Python module, which only the test extra brings; so finding a server, counting xruns and
connecting ports go straight to the C library. No process callback is ever set: nothing of
ours runs in JACK's realtime thread. The callbacks used (xrun, shutdown) run on JACK's
notification thread and only bump a counter or set a flag.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import errno
import os
import threading

from engine.errors import DeviceError

NO_START_SERVER = 0x01  # JackOptions.JackNoStartServer
_XRUN = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.c_void_p)
_SHUTDOWN = ctypes.CFUNCTYPE(None, ctypes.c_int, ctypes.c_char_p, ctypes.c_void_p)

_lib: ctypes.CDLL | None = None
_lib_error = ""


def library() -> ctypes.CDLL | None:
    """libjack, loaded once (None when the system has none)."""
    global _lib, _lib_error
    if _lib is not None or _lib_error:
        return _lib
    names = [ctypes.util.find_library("jack"), "libjack.so.0", "libjack.0.dylib", "libjack64.dll",
             "libjack.dll"]
    for name in filter(None, names):
        try:
            lib = ctypes.CDLL(name)
        except OSError as exc:
            _lib_error = str(exc)
            continue
        _declare(lib)
        _lib, _lib_error = lib, ""
        return lib
    _lib_error = _lib_error or "libjack not found"
    return None


def _declare(lib: ctypes.CDLL) -> None:
    p, i, u, s = ctypes.c_void_p, ctypes.c_int, ctypes.c_uint32, ctypes.c_char_p
    for name, res, args in (
            ("jack_client_open", p, [s, i, ctypes.POINTER(i)]),
            ("jack_client_close", i, [p]),
            ("jack_activate", i, [p]),
            ("jack_deactivate", i, [p]),
            ("jack_get_sample_rate", u, [p]),
            ("jack_get_buffer_size", u, [p]),
            ("jack_frame_time", u, [p]),
            ("jack_connect", i, [p, s, s]),
            ("jack_port_by_name", p, [p, s]),
            ("jack_port_get_all_connections", ctypes.POINTER(s), [p, p]),
            ("jack_free", None, [p]),
            ("jack_set_xrun_callback", i, [p, _XRUN, p]),
            ("jack_on_info_shutdown", None, [p, _SHUTDOWN, p])):
        fn = getattr(lib, name)
        fn.restype, fn.argtypes = res, args


@contextlib.contextmanager
def _quiet_fd2():
    """libjack prints several lines to file descriptor 2 when no server answers."""
    try:
        saved = os.dup(2)
    except OSError:
        yield
        return
    try:
        with open(os.devnull, "wb") as null:
            os.dup2(null.fileno(), 2)
            yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


def server_running() -> bool:
    """True when a JACK server answers (never starts one)."""
    lib = library()
    if lib is None:
        return False
    os.environ.setdefault("JACK_NO_START_SERVER", "1")
    status = ctypes.c_int(0)
    with _quiet_fd2():
        client = lib.jack_client_open(b"popmusicnet-probe", NO_START_SERVER, ctypes.byref(status))
        if client:
            lib.jack_client_close(client)
    return bool(client)


class Client:
    """A JACK client with no ports of its own: sample rate, xruns, shutdown, connections."""

    def __init__(self, name: str) -> None:
        lib = library()
        if lib is None:
            raise DeviceError(f"JACK is not installed ({_lib_error})")
        os.environ.setdefault("JACK_NO_START_SERVER", "1")
        self._lib = lib
        status = ctypes.c_int(0)
        with _quiet_fd2():
            self._client = lib.jack_client_open(name.encode(), NO_START_SERVER,
                                                ctypes.byref(status))
        if not self._client:
            raise DeviceError(f"no JACK server (status 0x{status.value:x})")
        self.xruns = 0
        self.shutdown = threading.Event()
        self.shutdown_reason = ""
        # Kept as attributes: ctypes callbacks must outlive the client that calls them.
        self._on_xrun = _XRUN(self._xrun)
        self._on_shutdown = _SHUTDOWN(self._shutdown)
        lib.jack_set_xrun_callback(self._client, self._on_xrun, None)
        lib.jack_on_info_shutdown(self._client, self._on_shutdown, None)
        if lib.jack_activate(self._client):
            lib.jack_client_close(self._client)
            raise DeviceError("the JACK client could not be activated")
        self.sample_rate = int(lib.jack_get_sample_rate(self._client))
        self.blocksize = int(lib.jack_get_buffer_size(self._client))

    def _xrun(self, _arg) -> int:
        self.xruns += 1
        return 0

    def _shutdown(self, _status, reason, _arg) -> None:
        self.shutdown_reason = (reason or b"").decode("utf-8", "replace")
        self.shutdown.set()

    def frame_time(self) -> int:
        return int(self._lib.jack_frame_time(self._client))

    def connect(self, source: str, destination: str) -> tuple[bool, str]:
        """(connected, why not). An existing connection counts as connected."""
        rc = self._lib.jack_connect(self._client, source.encode(), destination.encode())
        if rc == 0 or rc == errno.EEXIST:
            return True, ""
        return False, f"jack_connect returned {rc}"

    def connections(self, port: str) -> list[str]:
        lib = self._lib
        handle = lib.jack_port_by_name(self._client, port.encode())
        if not handle:
            return []
        names = lib.jack_port_get_all_connections(self._client, handle)
        if not names:
            return []
        out, i = [], 0
        while names[i]:
            out.append(names[i].decode("utf-8", "replace"))
            i += 1
        lib.jack_free(ctypes.cast(names, ctypes.c_void_p))
        return out

    def close(self) -> None:
        if self._client and not self.shutdown.is_set():
            self._lib.jack_deactivate(self._client)
            self._lib.jack_client_close(self._client)
        self._client = None
