"""Sans-I/O wire formats: bytes in, typed events out (h11's and jeepney's shape).

Nothing here touches a file descriptor. Every kernel format sessionio reads is parsed by a pure
function of bytes, unit-tested from golden bytes and fuzzed without root.
"""
