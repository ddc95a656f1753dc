// Every user of the wire messages needs SwiftProtobuf's members (`.with`, `serializedBytes`).
@_exported public import SwiftProtobuf
