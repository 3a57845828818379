//! Randomness from the operating system's CSPRNG: the one source of every
//! secret (signing keys, runner keys) and of random slug suffixes.

/// `N` bytes from the operating system's CSPRNG.
pub fn random_bytes<const N: usize>() -> [u8; N] {
    let mut bytes = [0u8; N];
    getrandom::fill(&mut bytes).expect("the operating system's random source failed");
    bytes
}
