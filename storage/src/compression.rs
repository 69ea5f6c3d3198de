//! Compressed inputs, recognised by extension: gzip (`.gz`) and lz4 frames (`.lz4`). Compressed
//! files cannot be split: each is read whole, through its decoder.

use std::io::{self, Read};

use crate::config::StorageConfig;
use crate::error::{Result, StorageError};
use crate::location::Location;
use crate::reader::ObjectReader;

/// A file's compression.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Codec {
    /// Plain bytes (splittable).
    None,
    /// gzip, possibly several concatenated members.
    Gzip,
    /// The lz4 frame format (what the `lz4` command writes).
    Lz4,
}

impl Codec {
    /// The codec a file name implies; unsupported compressed formats are an error rather than
    /// being read as garbage.
    pub fn for_url(url: &str) -> Result<Codec> {
        let name = url.rsplit('/').next().unwrap_or(url).to_ascii_lowercase();
        let ext = name.rsplit_once('.').map(|(_, e)| e).unwrap_or("");
        match ext {
            "gz" | "gzip" => Ok(Codec::Gzip),
            "lz4" => Ok(Codec::Lz4),
            "bz2" | "zst" | "zstd" | "xz" | "snappy" | "deflate" | "br" => {
                Err(StorageError::UnsupportedCompression {
                    url: url.to_string(),
                    codec: ext.to_string(),
                })
            }
            _ => Ok(Codec::None),
        }
    }

    /// Whether files with this codec can be cut into byte-range splits.
    pub fn splittable(self) -> bool {
        self == Codec::None
    }

    /// The codec a stream's first bytes announce: gzip (`1f 8b`), an lz4 frame
    /// (`04 22 4d 18`), otherwise none. For inputs whose name says nothing (a reader, a file
    /// named `.idx` holding gzip bytes); named files go by [`Codec::for_url`].
    pub fn sniff(head: &[u8]) -> Codec {
        if head.starts_with(&[0x1f, 0x8b]) {
            Codec::Gzip
        } else if head.starts_with(&[0x04, 0x22, 0x4d, 0x18]) {
            Codec::Lz4
        } else {
            Codec::None
        }
    }

    /// The codec's name in errors.
    pub fn name(self) -> &'static str {
        match self {
            Codec::None => "none",
            Codec::Gzip => "gzip",
            Codec::Lz4 => "lz4",
        }
    }
}

/// A reader that turns decoder failures into [`StorageError::Decompress`] naming the URL and the
/// decompressed offset, while passing storage errors (network, not found) through unchanged.
pub struct DecodingReader {
    inner: Box<dyn Read + Send>,
    url: String,
    codec: Codec,
    produced: u64,
}

impl Read for DecodingReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self.inner.read(buf) {
            Ok(n) => {
                self.produced += n as u64;
                Ok(n)
            }
            Err(e) if self.codec == Codec::None || StorageError::is_wrapped(&e) => Err(e),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => Err(e),
            Err(e) => Err(StorageError::Decompress {
                url: self.url.clone(),
                codec: self.codec.name(),
                offset: self.produced,
                source: e,
            }
            .into_io()),
        }
    }
}

/// `reader` decoded as its first bytes say ([`Codec::sniff`]), buffered; errors are the
/// reader's own (decoder failures as `InvalidData`/`InvalidInput`, truncation as
/// `UnexpectedEof`), for callers that name their source themselves.
pub fn decode_sniffed(
    reader: Box<dyn Read + Send>,
) -> io::Result<(Codec, Box<dyn io::BufRead + Send>)> {
    use io::BufRead;
    let mut buffered = io::BufReader::with_capacity(1 << 16, reader);
    let codec = Codec::sniff(buffered.fill_buf()?);
    let decoded: Box<dyn io::BufRead + Send> = match codec {
        Codec::None => Box::new(buffered),
        Codec::Gzip => Box::new(io::BufReader::with_capacity(
            1 << 16,
            flate2::bufread::MultiGzDecoder::new(buffered),
        )),
        Codec::Lz4 => Box::new(io::BufReader::with_capacity(
            1 << 16,
            lz4_flex::frame::FrameDecoder::new(buffered),
        )),
    };
    Ok((codec, decoded))
}

/// Opens a whole object and decodes it according to its extension.
pub fn open_decoded(loc: &Location, config: &StorageConfig) -> Result<DecodingReader> {
    let codec = Codec::for_url(loc.url())?;
    let raw = ObjectReader::open_whole(loc, config)?;
    let buffered = io::BufReader::with_capacity(1 << 20, raw);
    let inner: Box<dyn Read + Send> = match codec {
        Codec::None => Box::new(buffered),
        Codec::Gzip => Box::new(flate2::bufread::MultiGzDecoder::new(buffered)),
        Codec::Lz4 => Box::new(lz4_flex::frame::FrameDecoder::new(buffered)),
    };
    Ok(DecodingReader {
        inner,
        url: loc.url().to_string(),
        codec,
        produced: 0,
    })
}
