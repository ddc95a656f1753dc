/// A rejection a fuzz target makes itself, where the process it stands for has no error of its
/// own: a byte stream that ends inside a frame (a connection would wait for the rest), a task
/// report a master drops, a job a new leader fails instead of loading, a malformed store image.
/// The message names what is wrong, as every error of the real decoders does.
public struct FuzzTargetError: Error, Sendable, CustomStringConvertible {
    public var message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
}
