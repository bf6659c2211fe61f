"""Fake vendor servers on 127.0.0.1 that speak each vendor's real wire format.

Real code, not test hacks: the tests, `bench/` and the offline demo use them. A test scripts a
server with vendor-neutral behaviours (`Reply` of `Say`/`Think`/`Call`/`Count`/`End`, or `Fail`),
and each vendor's server renders them into its own protocol.
"""
