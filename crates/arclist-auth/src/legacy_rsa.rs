//! RSA signing with keys of 1024 to 2047 bits through aws-lc's C API.
//!
//! aws-lc-rs deliberately refuses to sign with RSA keys under 2048 bits, but RFC 8301 allows
//! 1024-bit keys, many domains still publish them, and the open ARC test suite's expected
//! signatures come from one. This is the only unsafe code in arclist; it is kept to the four
//! C calls needed and owns the key pointer.

use aws_lc_sys as ffi;

/// An RSA private key held by aws-lc.
pub struct LegacyRsaKey {
    rsa: *mut ffi::RSA,
}

// SAFETY: aws-lc RSA objects are internally locked for signing (blinding state is protected by
// the library), and the pointer is owned exclusively by this value.
unsafe impl Send for LegacyRsaKey {}
// SAFETY: as above; `RSA_sign` may be called concurrently on one key.
unsafe impl Sync for LegacyRsaKey {}

impl LegacyRsaKey {
    /// Parses a PKCS#1 RSAPrivateKey.
    pub fn from_pkcs1(der: &[u8]) -> Option<Self> {
        let mut ptr = der.as_ptr();
        let len = std::os::raw::c_long::try_from(der.len()).ok()?;
        // SAFETY: `ptr` points at `len` readable bytes; aws-lc allocates a new RSA or returns null.
        let rsa = unsafe { ffi::d2i_RSAPrivateKey(std::ptr::null_mut(), &mut ptr, len) };
        Self::checked(rsa)
    }

    /// Parses a PKCS#8 PrivateKeyInfo holding an RSA key.
    pub fn from_pkcs8(der: &[u8]) -> Option<Self> {
        // SAFETY: CBS only borrows `der` for the duration of the parse; the EVP_PKEY is freed
        // after taking a counted reference to its RSA.
        unsafe {
            let mut cbs = std::mem::zeroed::<ffi::CBS>();
            ffi::CBS_init(&mut cbs, der.as_ptr(), der.len());
            let pkey = ffi::EVP_parse_private_key(&mut cbs);
            if pkey.is_null() {
                return None;
            }
            let rsa = ffi::EVP_PKEY_get1_RSA(pkey);
            ffi::EVP_PKEY_free(pkey);
            Self::checked(rsa)
        }
    }

    fn checked(rsa: *mut ffi::RSA) -> Option<Self> {
        if rsa.is_null() {
            return None;
        }
        let key = LegacyRsaKey { rsa };
        // SAFETY: `rsa` is a valid key owned by `key`.
        let bytes = unsafe { ffi::RSA_size(key.rsa) };
        (128..=1024).contains(&bytes).then_some(key)
    }

    /// PKCS#1 v1.5 signature over SHA-256(`data`).
    pub fn sign_sha256(&self, data: &[u8]) -> Option<Vec<u8>> {
        let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, data);
        // SAFETY: `self.rsa` is valid; `out` has RSA_size bytes, the most RSA_sign writes.
        unsafe {
            let mut out = vec![0u8; ffi::RSA_size(self.rsa) as usize];
            let mut out_len: std::os::raw::c_uint = 0;
            let ok = ffi::RSA_sign(
                ffi::NID_sha256,
                digest.as_ref().as_ptr(),
                digest.as_ref().len(),
                out.as_mut_ptr(),
                &mut out_len,
                self.rsa,
            );
            if ok != 1 {
                return None;
            }
            out.truncate(out_len as usize);
            Some(out)
        }
    }

    /// The public key as DER SubjectPublicKeyInfo.
    pub fn public_spki(&self) -> Option<Vec<u8>> {
        // SAFETY: i2d with a null output pointer returns the length; then it writes exactly
        // that many bytes into our buffer.
        unsafe {
            let len = ffi::i2d_RSA_PUBKEY(self.rsa, std::ptr::null_mut());
            let len = usize::try_from(len).ok().filter(|&l| l > 0)?;
            let mut out = vec![0u8; len];
            let mut p = out.as_mut_ptr();
            ffi::i2d_RSA_PUBKEY(self.rsa, &mut p);
            Some(out)
        }
    }
}

impl Drop for LegacyRsaKey {
    fn drop(&mut self) {
        // SAFETY: we own the only reference.
        unsafe { ffi::RSA_free(self.rsa) }
    }
}
