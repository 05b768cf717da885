use std::io::{self, Read, Seek, SeekFrom};

/// Random access to a stored video, so that cover extraction reads only the index and one
/// frame: the object may sit in S3, where every read is a ranged GET.
pub trait ReadAt {
    /// Total size in bytes.
    fn len(&self) -> u64;

    /// Returns exactly `len` bytes starting at `offset`. Callers never ask past [`len`](Self::len).
    fn read_at(&mut self, offset: u64, len: usize) -> io::Result<Vec<u8>>;

    fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl ReadAt for &[u8] {
    fn len(&self) -> u64 {
        <[u8]>::len(self) as u64
    }

    fn read_at(&mut self, offset: u64, len: usize) -> io::Result<Vec<u8>> {
        slice_read_at(self, offset, len)
    }
}

impl ReadAt for Vec<u8> {
    fn len(&self) -> u64 {
        self.as_slice().len() as u64
    }

    fn read_at(&mut self, offset: u64, len: usize) -> io::Result<Vec<u8>> {
        slice_read_at(self, offset, len)
    }
}

fn slice_read_at(data: &[u8], offset: u64, len: usize) -> io::Result<Vec<u8>> {
    let start = usize::try_from(offset).map_err(|_| out_of_range())?;
    let end = start.checked_add(len).ok_or_else(out_of_range)?;
    data.get(start..end)
        .map(<[u8]>::to_vec)
        .ok_or_else(out_of_range)
}

/// Adapts anything seekable (a `File`, a `Cursor`) to [`ReadAt`].
#[derive(Debug)]
pub struct SeekSource<R> {
    inner: R,
    len: u64,
}

impl<R: Read + Seek> SeekSource<R> {
    pub fn new(mut inner: R) -> io::Result<Self> {
        let len = inner.seek(SeekFrom::End(0))?;
        Ok(SeekSource { inner, len })
    }

    pub fn into_inner(self) -> R {
        self.inner
    }
}

impl<R: Read + Seek> ReadAt for SeekSource<R> {
    fn len(&self) -> u64 {
        self.len
    }

    fn read_at(&mut self, offset: u64, len: usize) -> io::Result<Vec<u8>> {
        self.inner.seek(SeekFrom::Start(offset))?;
        let mut buf = vec![0; len];
        self.inner.read_exact(&mut buf)?;
        Ok(buf)
    }
}

fn out_of_range() -> io::Error {
    io::Error::new(
        io::ErrorKind::UnexpectedEof,
        "read past the end of the video",
    )
}
