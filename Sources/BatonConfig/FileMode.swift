#if canImport(Glibc)
public import Glibc
#endif

/// The permissions of the files Baton creates (`files.mode`): files get the mode, folders the
/// mode with `x` beside each `r` (0640 -> folders 0750). Applied as the process's umask, so every
/// file any part of Baton or its libraries (SQLite, LMDB) creates gets it.
public struct FileMode: Sendable, Hashable, CustomStringConvertible {
    /// The permission bits of files.
    public let bits: mode_t

    /// Owner read and write only (folders 0700): the default.
    public static let `private` = FileMode(unchecked: 0o600)

    private init(unchecked bits: mode_t) { self.bits = bits }

    /// Parses octal text such as `0600` or `640`; nil unless the owner may read and write and no
    /// execute or special bit is set.
    public init?(octal text: String) {
        guard !text.isEmpty, text.count <= 4, let value = mode_t(text, radix: 8), value & ~0o666 == 0, value & 0o600 == 0o600 else {
            return nil
        }
        bits = value
    }

    /// The folders' permission bits.
    public var folderBits: mode_t { bits | ((bits & 0o444) >> 2) }

    /// The umask that gives files `bits` (created asking for 0666) and folders `folderBits`.
    public var umask: mode_t { 0o777 & ~folderBits }

    /// Makes it the process's umask, for every file created from now on.
    public func apply() { _ = Glibc.umask(umask) }

    public var description: String { "0" + String(bits, radix: 8) }
}
