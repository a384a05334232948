//! Certificates: sets of signed messages that prove something to anyone
//! who checks them (§4.2, §4.4).
//!
//! A certificate is checked member by member: each signature is verified
//! against the replica the member speaks for, each member must match the
//! others, and each replica counts once. So a certificate cannot be forged
//! without the signers' keys, nor padded with copies of one vote.

use std::fmt;

use crate::auth::{AuthFailure, Authenticator};
use crate::message::{Message, PrePrepare, Signed};
use crate::quorum::Quorums;
use crate::replica::Replica;
use crate::service::Service;
use crate::types::{ReplicaId, Seq};

/// Proof that a batch was *prepared* at `(view, seq)`: the primary's signed
/// pre-prepare and `2f` signed prepares from distinct backups that match
/// it (§4.2). View changes carry these.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PreparedCertificate {
    /// The primary's pre-prepare, with its signature.
    pub pre_prepare: Signed,
    /// Matching prepares from distinct backups, with their signatures.
    pub prepares: Vec<Signed>,
}

/// Why a certificate does not prove what it claims.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CertificateError {
    /// The first member is not a pre-prepare.
    NotAPrePrepare,
    /// The pre-prepare's digest is not its batch's.
    DigestMismatch,
    /// A member's signature does not verify for the replica it speaks for.
    BadSignature {
        /// The replica the member speaks for.
        signer: ReplicaId,
        /// What is wrong with the signature.
        failure: AuthFailure,
    },
    /// The member at `index` of the prepares is not a prepare.
    NotAPrepare {
        /// Its position.
        index: usize,
    },
    /// The prepare at `index` is for another view, number or digest.
    Mismatch {
        /// Its position.
        index: usize,
    },
    /// A prepare names a replica outside the cluster.
    NonMember {
        /// The replica named.
        replica: ReplicaId,
    },
    /// A prepare from the primary, which sends none.
    FromPrimary,
    /// Two prepares from the same replica: it counts once.
    Duplicate {
        /// The replica.
        replica: ReplicaId,
    },
    /// Fewer distinct valid prepares than the certificate needs.
    TooFew {
        /// How many there are.
        have: usize,
        /// How many are needed (`2f` for `n = 3f + 1`).
        need: usize,
    },
}

impl fmt::Display for CertificateError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CertificateError::NotAPrePrepare => {
                f.write_str("the first member is not a pre-prepare")
            }
            CertificateError::DigestMismatch => {
                f.write_str("the pre-prepare's digest is not its batch's")
            }
            CertificateError::BadSignature { signer, failure } => {
                write!(
                    f,
                    "the member signed by {signer} is not authentic: {failure}"
                )
            }
            CertificateError::NotAPrepare { index } => write!(f, "member {index} is not a prepare"),
            CertificateError::Mismatch { index } => {
                write!(f, "prepare {index} does not match the pre-prepare")
            }
            CertificateError::NonMember { replica } => {
                write!(f, "a prepare names {replica}, not a member")
            }
            CertificateError::FromPrimary => f.write_str("a prepare comes from the primary"),
            CertificateError::Duplicate { replica } => {
                write!(f, "two prepares from {replica}")
            }
            CertificateError::TooFew { have, need } => {
                write!(f, "{have} valid prepares, {need} needed")
            }
        }
    }
}

impl std::error::Error for CertificateError {}

impl PreparedCertificate {
    /// The pre-prepare the certificate is about, if the first member is one.
    pub fn pre_prepare(&self) -> Option<&PrePrepare> {
        match &self.pre_prepare.message {
            Message::PrePrepare(pp) => Some(pp),
            _ => None,
        }
    }

    /// Checks every member. On success the batch of
    /// [`pre_prepare`](Self::pre_prepare) was prepared at its view and
    /// number by a quorum that includes at least `f + 1` honest replicas.
    pub fn check(
        &self,
        quorums: &Quorums,
        auth: &dyn Authenticator,
    ) -> Result<(), CertificateError> {
        let pp = self.pre_prepare().ok_or(CertificateError::NotAPrePrepare)?;
        if pp.digest != pp.batch.digest() {
            return Err(CertificateError::DigestMismatch);
        }
        let primary = quorums.primary(pp.view);
        verify(auth, primary, &self.pre_prepare)?;
        let mut seen = vec![false; quorums.n()];
        for (index, member) in self.prepares.iter().enumerate() {
            let Message::Prepare(vote) = &member.message else {
                return Err(CertificateError::NotAPrepare { index });
            };
            if (vote.view, vote.seq, vote.digest) != (pp.view, pp.seq, pp.digest) {
                return Err(CertificateError::Mismatch { index });
            }
            let Some(seen) = seen.get_mut(vote.replica.index()) else {
                return Err(CertificateError::NonMember {
                    replica: vote.replica,
                });
            };
            if vote.replica == primary {
                return Err(CertificateError::FromPrimary);
            }
            if std::mem::replace(seen, true) {
                return Err(CertificateError::Duplicate {
                    replica: vote.replica,
                });
            }
            verify(auth, vote.replica, member)?;
        }
        let (have, need) = (self.prepares.len(), quorums.prepares_needed());
        if have < need {
            return Err(CertificateError::TooFew { have, need });
        }
        Ok(())
    }
}

fn verify(
    auth: &dyn Authenticator,
    signer: ReplicaId,
    member: &Signed,
) -> Result<(), CertificateError> {
    auth.verify(signer, &member.message, member.signature.as_ref())
        .map_err(|failure| CertificateError::BadSignature { signer, failure })
}

impl<S: Service> Replica<S> {
    /// This replica's prepared certificate for `seq`, once the number is
    /// prepared here: the accepted pre-prepare and the matching prepares it
    /// holds, each with the signature it arrived with.
    pub fn prepared_certificate(&self, seq: Seq) -> Option<PreparedCertificate> {
        let slot = self.log.get(seq)?;
        if !slot.commit_sent {
            return None;
        }
        let pp = slot.pre_prepare.clone()?;
        let prepares = slot
            .prepares
            .signed_for(pp.digest)
            .map(|(replica, signature)| Signed {
                message: Message::Prepare(crate::message::Vote {
                    view: pp.view,
                    seq,
                    digest: pp.digest,
                    replica,
                }),
                signature,
            })
            .collect();
        Some(PreparedCertificate {
            pre_prepare: Signed {
                message: Message::PrePrepare(pp),
                signature: slot.pre_prepare_signature,
            },
            prepares,
        })
    }
}
