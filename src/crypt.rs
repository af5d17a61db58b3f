//! Encryption with age: X25519 recipients, the stock age file format.
//!
//! An encrypted object is one age file, split into parts like any other stream. So
//! `cat name.age.part* > name.age && age -d -i key.txt name.age > name` gives the
//! original back with the stock `age` tool, without tgploy. age's randomised header
//! means an encrypted stream cannot resume half-way: a new attempt starts at part 1.

use std::io::{self, Read, Write};
use std::path::Path;

use age::Identity;
use age::x25519::Recipient;

/// The suffix of an encrypted stream's name: `name.age`, `name.age.part001`, …
pub(crate) const SUFFIX: &str = ".age";
/// The scheme a manifest names.
pub(crate) const SCHEME: &str = "age";

/// Plaintext bytes per age STREAM chunk; each chunk gains a 16-byte tag.
const CHUNK: u64 = 64 * 1024;
const TAG: u64 = 16;

/// The recipients every object is encrypted to.
#[derive(Clone)]
pub(crate) struct Encryption {
    recipients: Vec<Recipient>,
    labels: Vec<String>,
}

impl std::fmt::Debug for Encryption {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Encryption").field("recipients", &self.labels).finish()
    }
}

impl Encryption {
    /// Parses `age1…` recipients; the error names the first one that is not.
    pub(crate) fn new(recipients: &[String]) -> Result<Encryption, String> {
        if recipients.is_empty() {
            return Err("no recipients are given".into());
        }
        let mut parsed = Vec::new();
        for r in recipients {
            let r = r.trim();
            parsed.push(r.parse::<Recipient>().map_err(|e| {
                format!("`{r}` is not an age X25519 recipient ({e}); `age-keygen -y key.txt` prints yours")
            })?);
        }
        Ok(Encryption { recipients: parsed, labels: recipients.iter().map(|r| r.trim().to_string()).collect() })
    }

    /// The recipients as written (`age1…`), for manifests.
    pub(crate) fn recipients(&self) -> &[String] {
        &self.labels
    }

    /// Wraps `out` in a fresh age encryptor (a new file key each time). Call `finish`
    /// on the result to write the last chunk.
    pub(crate) fn wrap<W: Write>(&self, out: W) -> io::Result<age::stream::StreamWriter<W>> {
        let encryptor = age::Encryptor::with_recipients(self.recipients.iter().map(|r| r as &dyn age::Recipient))
            .map_err(|e| io::Error::other(format!("cannot set up age encryption: {e}")))?;
        encryptor.wrap_output(out)
    }

    /// The bytes that follow the header and nonce for `plain` bytes of plaintext: the
    /// payload in 64 KiB chunks with a 16-byte tag each (one empty chunk for empty
    /// input). The header's own size varies (age adds a random "grease" stanza); it is
    /// what [`Encryption::wrap`] writes before returning.
    pub(crate) fn payload_size(plain: u64) -> u64 {
        plain + TAG * plain.div_ceil(CHUNK).max(1)
    }
}

/// Reads age identities (`AGE-SECRET-KEY-1…` lines, as `age-keygen` writes them).
pub(crate) fn read_identities(path: &Path) -> Result<Vec<Box<dyn Identity>>, String> {
    let file = age::IdentityFile::from_file(path.display().to_string())
        .map_err(|e| format!("cannot read the age identity file {}: {e}", path.display()))?;
    let identities = file.into_identities().map_err(|e| {
        format!("{} holds no usable age identity ({e}); it should contain an AGE-SECRET-KEY-1… line", path.display())
    })?;
    if identities.is_empty() {
        return Err(format!("{} holds no age identity (an AGE-SECRET-KEY-1… line)", path.display()));
    }
    Ok(identities)
}

/// Why an age stream cannot be decrypted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum DecryptError {
    /// None of the identities is a recipient of the stream: the operator's to fix.
    WrongIdentity(String),
    /// The stream is not age, or cannot be read.
    Invalid(String),
}

impl std::fmt::Display for DecryptError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            DecryptError::WrongIdentity(m) | DecryptError::Invalid(m) => f.write_str(m),
        }
    }
}

/// Decrypts an age stream with the given identities.
pub(crate) fn decrypt<R: Read>(input: R, identities: &[Box<dyn Identity>]) -> Result<impl Read, DecryptError> {
    let decryptor = age::Decryptor::new(input).map_err(|e| {
        DecryptError::Invalid(match e {
            age::DecryptError::Io(e) => format!("cannot read the encrypted stream: {e}"),
            e => format!("the stream is not a valid age file ({e})"),
        })
    })?;
    decryptor.decrypt(identities.iter().map(|i| i.as_ref() as &dyn Identity)).map_err(|e| match e {
        age::DecryptError::NoMatchingKeys => DecryptError::WrongIdentity(
            "the identity does not match: this object was encrypted to other age recipients; pass the key file \
             whose public key (`age-keygen -y KEY`) is in `encryption.recipients`"
                .to_string(),
        ),
        e => DecryptError::Invalid(format!("cannot decrypt: {e}")),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Clone, Default)]
    struct Shared(std::rc::Rc<std::cell::RefCell<Vec<u8>>>);

    impl Write for Shared {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            self.0.borrow_mut().extend_from_slice(buf);
            Ok(buf.len())
        }

        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn size_is_predicted_exactly_and_the_stream_round_trips() {
        let key = age::x25519::Identity::generate();
        let other = age::x25519::Identity::generate();
        let recipients = vec![key.to_public().to_string(), other.to_public().to_string()];
        let enc = Encryption::new(&recipients).unwrap();
        for len in [0u64, 1, 65535, 65536, 65537, 131072, 200_000] {
            let plain: Vec<u8> = (0..len).map(|i| (i % 251) as u8).collect();
            let out = Shared::default();
            let mut w = enc.wrap(out.clone()).unwrap();
            // What the header (and nonce) took, written before any plaintext.
            let header = out.0.borrow().len() as u64;
            w.write_all(&plain).unwrap();
            w.finish().unwrap();
            let out = out.0.borrow().clone();
            assert_eq!(out.len() as u64, header + Encryption::payload_size(len), "len {len}");
            let ids: Vec<Box<dyn Identity>> = vec![Box::new(key.clone())];
            let mut back = Vec::new();
            decrypt(&out[..], &ids).unwrap().read_to_end(&mut back).unwrap();
            assert_eq!(back, plain);
        }
    }

    #[test]
    fn a_wrong_identity_or_recipient_is_named() {
        let enc = Encryption::new(&[age::x25519::Identity::generate().to_public().to_string()]).unwrap();
        let mut out = Vec::new();
        enc.wrap(&mut out).unwrap().finish().unwrap();
        let stranger: Vec<Box<dyn Identity>> = vec![Box::new(age::x25519::Identity::generate())];
        let err = decrypt(&out[..], &stranger).err().unwrap();
        assert!(matches!(&err, DecryptError::WrongIdentity(m) if m.contains("does not match")), "{err}");
        let err = Encryption::new(&["age1nope".into()]).unwrap_err();
        assert!(err.contains("age1nope"), "{err}");
    }
}
