//! Who may submit: the membership check behind one trait.
//!
//! [`MembershipVerifier`] is the seam between the chain and the way members prove they may
//! submit. Issue 2's implementation, [`GenesisMembers`], accepts an Ed25519 signature by a
//! key the genesis lists. The anonymous-membership issue replaces it with a linkable ring
//! signature over the registry at the submission's base; nothing else in the chain looks
//! inside a [`SubmissionAuth`].

use std::collections::HashSet;

use ed25519_dalek::{Signature, Signer, SigningKey, VerifyingKey};
use learnchain_proto::{Hash32, Signature64, Submission, SubmissionAuth};

use crate::error::SubmissionError;

/// Decides whether a submission's authorisation is valid.
pub trait MembershipVerifier: Send + Sync {
    /// Checks `submission`'s authorisation against its signing `digest`.
    fn verify(&self, submission: &Submission, digest: &Hash32) -> Result<(), SubmissionError>;
}

/// Members are the Ed25519 keys listed in the genesis.
pub struct GenesisMembers {
    keys: HashSet<Hash32>,
}

impl GenesisMembers {
    /// From the genesis member list.
    pub fn new(keys: &[Hash32]) -> Self {
        GenesisMembers { keys: keys.iter().copied().collect() }
    }
}

impl MembershipVerifier for GenesisMembers {
    fn verify(&self, submission: &Submission, digest: &Hash32) -> Result<(), SubmissionError> {
        match &submission.auth {
            SubmissionAuth::Ed25519 { key, signature } => {
                if !self.keys.contains(key) {
                    return Err(SubmissionError::UnknownMember(*key));
                }
                let vk = VerifyingKey::from_bytes(&key.0).map_err(|_| SubmissionError::BadSignature)?;
                let sig = Signature::from_bytes(&signature.0);
                vk.verify_strict(&digest.0, &sig).map_err(|_| SubmissionError::BadSignature)
            }
        }
    }
}

/// Signs `submission` in place with a member's Ed25519 key.
pub fn sign_submission(submission: &mut Submission, key: &SigningKey) {
    let digest = submission.signing_digest();
    let signature = key.sign(&digest.0);
    submission.auth = SubmissionAuth::Ed25519 {
        key: Hash32(key.verifying_key().to_bytes()),
        signature: Signature64(signature.to_bytes()),
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(seed: u8) -> SigningKey {
        SigningKey::from_bytes(&[seed; 32])
    }

    fn submission() -> Submission {
        Submission {
            chain_id: Hash32([1; 32]),
            base: Hash32([2; 32]),
            round: 1,
            num_examples: 10,
            dp: learnchain_proto::DpDeclaration {
                sample_rate: learnchain_proto::Fixed6(100_000),
                noise_multiplier: learnchain_proto::Fixed6(1_000_000),
                clip: learnchain_proto::Fixed6(1_000_000),
                steps: 1,
            },
            delta: vec![1, 2, 3],
            auth: SubmissionAuth::Ed25519 { key: Hash32::ZERO, signature: Signature64([0; 64]) },
        }
    }

    #[test]
    fn member_signature_verifies_and_tampering_fails() {
        let k = key(3);
        let members = GenesisMembers::new(&[Hash32(k.verifying_key().to_bytes())]);
        let mut s = submission();
        sign_submission(&mut s, &k);
        assert_eq!(members.verify(&s, &s.signing_digest()), Ok(()));
        let mut t = s.clone();
        t.delta[0] = 9;
        assert_eq!(members.verify(&t, &t.signing_digest()), Err(SubmissionError::BadSignature));
        let mut outsider = submission();
        sign_submission(&mut outsider, &key(4));
        assert!(matches!(
            members.verify(&outsider, &outsider.signing_digest()),
            Err(SubmissionError::UnknownMember(_))
        ));
    }
}
