//! SHA-256 over a whole object whose state survives the process.
//!
//! A delivery that dies after part k resumes at part k+1 without reading parts 1..=k
//! again. That needs the hash state after part k: parts are whole multiples of 64 bytes
//! (the SHA-256 block size; part sizes are whole KiB), so after each part but the last
//! the state is exactly eight 32-bit words plus the length, stored in the ledger with
//! the part. `sha2::compress256` runs the standard compression function over it.

use sha2::block_api::compress256;

const INITIAL: [u32; 8] =
    [0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19];

/// A SHA-256 that can be saved at block boundaries and resumed.
#[derive(Clone)]
pub(crate) struct ResumableSha256 {
    state: [u32; 8],
    len: u64,
    buf: [u8; 64],
    buf_len: usize,
}

impl Default for ResumableSha256 {
    fn default() -> Self {
        ResumableSha256 { state: INITIAL, len: 0, buf: [0; 64], buf_len: 0 }
    }
}

impl ResumableSha256 {
    pub(crate) fn new() -> Self {
        Self::default()
    }

    /// Resumes from a saved midstate (40 bytes: the eight state words big-endian, then
    /// the length hashed so far, big-endian).
    pub(crate) fn resume(saved: &[u8]) -> Option<Self> {
        if saved.len() != 40 {
            return None;
        }
        let mut state = [0u32; 8];
        for (i, word) in state.iter_mut().enumerate() {
            *word = u32::from_be_bytes(saved[i * 4..i * 4 + 4].try_into().ok()?);
        }
        let len = u64::from_be_bytes(saved[32..40].try_into().ok()?);
        if len % 64 != 0 {
            return None;
        }
        Some(ResumableSha256 { state, len, buf: [0; 64], buf_len: 0 })
    }

    /// The midstate, when everything hashed so far is a whole number of blocks.
    pub(crate) fn save(&self) -> Option<Vec<u8>> {
        if self.buf_len != 0 {
            return None;
        }
        let mut out = Vec::with_capacity(40);
        for word in self.state {
            out.extend_from_slice(&word.to_be_bytes());
        }
        out.extend_from_slice(&self.len.to_be_bytes());
        Some(out)
    }

    /// Bytes hashed so far.
    pub(crate) fn len(&self) -> u64 {
        self.len + self.buf_len as u64
    }

    pub(crate) fn update(&mut self, mut data: &[u8]) {
        if self.buf_len > 0 {
            let take = (64 - self.buf_len).min(data.len());
            self.buf[self.buf_len..self.buf_len + take].copy_from_slice(&data[..take]);
            self.buf_len += take;
            data = &data[take..];
            if self.buf_len < 64 {
                return;
            }
            compress256(&mut self.state, std::slice::from_ref(&self.buf));
            self.len += 64;
            self.buf_len = 0;
        }
        // Whole buffers go through the compression function in one call, so that its
        // SHA-NI (or AVX) code path runs over all their blocks.
        let (blocks, rest) = data.as_chunks::<64>();
        compress256(&mut self.state, blocks);
        self.len += 64 * blocks.len() as u64;
        self.buf[..rest.len()].copy_from_slice(rest);
        self.buf_len = rest.len();
    }

    /// The digest, as lowercase hex.
    pub(crate) fn finalize_hex(self) -> String {
        let bit_len = self.len().wrapping_mul(8);
        let mut state = self.state;
        let mut tail = [0u8; 128];
        tail[..self.buf_len].copy_from_slice(&self.buf[..self.buf_len]);
        tail[self.buf_len] = 0x80;
        let total = if self.buf_len < 56 { 64 } else { 128 };
        tail[total - 8..total].copy_from_slice(&bit_len.to_be_bytes());
        compress256(&mut state, tail[..total].as_chunks::<64>().0);
        state.iter().map(|w| format!("{w:08x}")).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sha2::{Digest, Sha256};

    fn reference(data: &[u8]) -> String {
        hex::encode(Sha256::digest(data))
    }

    #[test]
    fn matches_sha2_for_every_tail_length() {
        let data: Vec<u8> = (0..1000u32).map(|i| (i * 7 + 3) as u8).collect();
        for len in (0..200).chain([447, 448, 511, 512, 999, 1000]) {
            let mut h = ResumableSha256::new();
            // Odd chunking exercises the block buffer.
            for chunk in data[..len].chunks(13) {
                h.update(chunk);
            }
            assert_eq!(h.finalize_hex(), reference(&data[..len]), "len {len}");
        }
    }

    #[test]
    fn resumes_from_a_saved_midstate() {
        let data: Vec<u8> = (0..5000u32).map(|i| (i % 251) as u8).collect();
        let mut h = ResumableSha256::new();
        h.update(&data[..1024]);
        let saved = h.save().unwrap();
        let mut resumed = ResumableSha256::resume(&saved).unwrap();
        resumed.update(&data[1024..]);
        assert_eq!(resumed.finalize_hex(), reference(&data));
    }

    #[test]
    fn matches_sha2_over_large_buffers() {
        let data: Vec<u8> = (0..(1 << 20) + 100).map(|i: u32| (i % 253) as u8).collect();
        for chunk in [1, 63, 64, 4097, 1 << 16, (1 << 16) + 64, data.len()] {
            let mut h = ResumableSha256::new();
            for piece in data.chunks(chunk) {
                h.update(piece);
            }
            assert_eq!(h.finalize_hex(), reference(&data), "chunks of {chunk}");
        }
    }

    #[test]
    fn no_midstate_inside_a_block() {
        let mut h = ResumableSha256::new();
        h.update(&[1, 2, 3]);
        assert!(h.save().is_none());
        assert!(ResumableSha256::resume(&[0; 39]).is_none());
    }
}
