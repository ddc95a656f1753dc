import BatonCLI

#if canImport(Glibc)
@preconcurrency import Glibc
#endif

// Line by line even into a file or a pipe: `baton group > log` shows its own lines as they happen.
setvbuf(stdout, nil, _IOLBF, 0)
await BatonMain.run()
