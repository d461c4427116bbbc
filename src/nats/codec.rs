//! Codecs: how an event becomes a NATS message body and back.
//!
//! [`Json`] (the default) lets any language read and write the stream;
//! [`Binary`] (postcard: varints, no field names) is compact and fast but
//! only for peers that share the Rust type. Each message carries the codec's
//! [`content_type`](Codec::content_type) in a `Content-Type` header, and an
//! import refuses a message whose header names another codec instead of
//! misreading it.

use serde::de::DeserializeOwned;
use serde::Serialize;

use super::error::CodecError;

/// Turns events of type `T` into message bodies and back.
///
/// Implement it for formats other than the two built in (protobuf, a
/// hand-made layout, ...). Both methods run on the bridge's side of the
/// queue: `encode` on the engine worker that runs the export subscription,
/// `decode` on the bridge's import task.
///
/// # Examples
///
/// ```
/// use pinbus::nats::{Codec, CodecError};
///
/// /// Plain UTF-8 text, for a topic of strings.
/// #[derive(Debug, Clone, Copy)]
/// struct Text;
///
/// impl Codec<String> for Text {
///     fn encode(&self, value: &String) -> Result<Vec<u8>, CodecError> {
///         Ok(value.as_bytes().to_vec())
///     }
///     fn decode(&self, bytes: &[u8]) -> Result<String, CodecError> {
///         String::from_utf8(bytes.to_vec()).map_err(|e| CodecError::decode("text", e))
///     }
///     fn content_type(&self) -> &'static str {
///         "text/plain"
///     }
/// }
///
/// let bytes = Text.encode(&"hi".to_owned()).unwrap();
/// assert_eq!(Text.decode(&bytes).unwrap(), "hi");
/// ```
pub trait Codec<T>: Send + Sync + 'static {
    /// The message body for `value`.
    ///
    /// # Errors
    ///
    /// A [`CodecError`] when the value cannot be represented.
    fn encode(&self, value: &T) -> Result<Vec<u8>, CodecError>;

    /// The value in a message body.
    ///
    /// # Errors
    ///
    /// A [`CodecError`] when the bytes are not a valid `T`.
    fn decode(&self, bytes: &[u8]) -> Result<T, CodecError>;

    /// The `Content-Type` header written with each message (a MIME type).
    fn content_type(&self) -> &'static str;
}

/// JSON through `serde_json`: the default, readable from any language.
///
/// # Examples
///
/// ```
/// use pinbus::nats::{Codec, Json};
/// #[derive(serde::Serialize, serde::Deserialize, Debug, PartialEq)]
/// struct Order { id: u64, cents: u64 }
///
/// let bytes = Json.encode(&Order { id: 1, cents: 250 }).unwrap();
/// assert_eq!(bytes, br#"{"id":1,"cents":250}"#);
/// assert_eq!(Json.decode(&bytes), Ok(Order { id: 1, cents: 250 }));
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Json;

impl<T: Serialize + DeserializeOwned> Codec<T> for Json {
    fn encode(&self, value: &T) -> Result<Vec<u8>, CodecError> {
        serde_json::to_vec(value).map_err(|e| CodecError::encode("JSON", e))
    }

    fn decode(&self, bytes: &[u8]) -> Result<T, CodecError> {
        serde_json::from_slice(bytes).map_err(|e| CodecError::decode("JSON", e))
    }

    fn content_type(&self) -> &'static str {
        "application/json"
    }
}

/// Compact binary through `postcard` (varint integers, no field names):
/// smaller and faster than JSON, readable only by peers with the same Rust
/// type (field order matters; renaming a field does not).
///
/// # Examples
///
/// ```
/// use pinbus::nats::{Binary, Codec};
/// #[derive(serde::Serialize, serde::Deserialize, Debug, PartialEq)]
/// struct Order { id: u64, cents: u64 }
///
/// let bytes = Binary.encode(&Order { id: 1, cents: 250 }).unwrap();
/// assert_eq!(bytes.len(), 3); // 1 byte for id, 2 for cents
/// assert_eq!(Binary.decode(&bytes), Ok(Order { id: 1, cents: 250 }));
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Binary;

impl<T: Serialize + DeserializeOwned> Codec<T> for Binary {
    fn encode(&self, value: &T) -> Result<Vec<u8>, CodecError> {
        postcard::to_stdvec(value).map_err(|e| CodecError::encode("postcard", e))
    }

    fn decode(&self, bytes: &[u8]) -> Result<T, CodecError> {
        postcard::from_bytes(bytes).map_err(|e| CodecError::decode("postcard", e))
    }

    fn content_type(&self) -> &'static str {
        "application/x-postcard"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(serde::Serialize, serde::Deserialize, Debug, PartialEq, Clone)]
    struct Order {
        id: u64,
        note: String,
    }

    #[test]
    fn json_and_binary_round_trip() {
        let order = Order {
            id: 7,
            note: "café".into(),
        };
        assert_eq!(
            Json.decode(&Json.encode(&order).unwrap()),
            Ok(order.clone())
        );
        assert_eq!(
            Binary.decode(&Binary.encode(&order).unwrap()),
            Ok(order.clone())
        );
        assert!(Binary.encode(&order).unwrap().len() < Json.encode(&order).unwrap().len());
    }

    #[test]
    fn decode_errors_name_the_codec() {
        let e = <Json as Codec<Order>>::decode(&Json, b"{\"id\":1}").unwrap_err();
        assert_eq!((e.codec, e.action), ("JSON", "decode"));
        assert!(e.reason.contains("note"), "{e}");
        let e = <Binary as Codec<Order>>::decode(&Binary, &[]).unwrap_err();
        assert_eq!(e.codec, "postcard");
    }
}
