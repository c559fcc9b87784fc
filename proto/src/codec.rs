//! The codec of every `reelfarm.v1` service and client: prost's, except that a request that is
//! not valid protobuf for its message (a string field that is not UTF-8, a truncated field) is
//! `INVALID_ARGUMENT` naming the field, not `INTERNAL`: clients retry `INTERNAL`, and sending
//! the same bytes again cannot help.

use std::marker::PhantomData;

use prost::Message;
use tonic::codec::{BufferSettings, Codec, DecodeBuf, Decoder};
use tonic::Status;
use tonic_prost::{ProstDecoder, ProstEncoder};

/// [`tonic_prost::ProstCodec`] with decode errors as `INVALID_ARGUMENT`.
#[derive(Debug, Clone, Copy)]
pub struct ProtoCodec<T, U>(PhantomData<(T, U)>);

impl<T, U> Default for ProtoCodec<T, U> {
    fn default() -> Self {
        ProtoCodec(PhantomData)
    }
}

impl<T, U> Codec for ProtoCodec<T, U>
where
    T: Message + Send + 'static,
    U: Message + Default + Send + 'static,
{
    type Encode = T;
    type Decode = U;
    type Encoder = ProstEncoder<T>;
    type Decoder = ProtoDecoder<U>;

    fn encoder(&mut self) -> Self::Encoder {
        ProstEncoder::new(BufferSettings::default())
    }

    fn decoder(&mut self) -> Self::Decoder {
        ProtoDecoder(ProstDecoder::new(BufferSettings::default()))
    }
}

/// Decodes with prost; a message that does not decode is `INVALID_ARGUMENT`.
#[derive(Debug)]
pub struct ProtoDecoder<U>(ProstDecoder<U>);

impl<U: Message + Default> Decoder for ProtoDecoder<U> {
    type Item = U;
    type Error = Status;

    fn decode(&mut self, buf: &mut DecodeBuf<'_>) -> Result<Option<U>, Status> {
        self.0.decode(buf).map_err(|status| {
            // prost's message names the field: "failed to decode Protobuf message:
            // SubmitRenderRequest.idempotency_key: invalid string value: data is not UTF-8
            // encoded".
            Status::invalid_argument(status.message().replacen(
                "failed to decode Protobuf message",
                "the message is not valid reelfarm.v1 protobuf",
                1,
            ))
        })
    }

    fn buffer_settings(&self) -> BufferSettings {
        self.0.buffer_settings()
    }
}
