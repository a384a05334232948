//! Certificates: sets of signed messages that prove something to anyone
//! who checks them (§4.2, §4.4).
//!
//! A certificate is checked member by member: each signature is verified
//! against the replica the member speaks for, each member must match the
//! others, and each replica counts once. So a certificate cannot be forged
//! without the signers' keys, nor padded with copies of one vote.

use std::fmt;

use crate::auth::{AuthFailure, Authenticator};
use crate::checkpoint::StableCheckpoint;
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
    /// A committed certificate's pre-prepare names its batch by digest
    /// only: it proves the number committed but cannot be executed.
    MissingBatch,
    /// A member's signature does not verify for the replica it speaks for.
    BadSignature {
        /// The replica the member speaks for.
        signer: ReplicaId,
        /// What is wrong with the signature.
        failure: AuthFailure,
    },
    /// The member at `index` is of the wrong kind (not a prepare in a
    /// prepared certificate, not a checkpoint in a checkpoint proof).
    WrongKind {
        /// Its position.
        index: usize,
    },
    /// The member at `index` is for another view, number or digest.
    Mismatch {
        /// Its position.
        index: usize,
    },
    /// A member names a replica outside the cluster.
    NonMember {
        /// The replica named.
        replica: ReplicaId,
    },
    /// A prepare from the primary, which sends none.
    FromPrimary,
    /// Two members from the same replica: it counts once.
    Duplicate {
        /// The replica.
        replica: ReplicaId,
    },
    /// Fewer distinct valid members than the certificate needs.
    TooFew {
        /// How many there are.
        have: usize,
        /// How many are needed (`2f` prepares or `2f + 1` checkpoints for
        /// `n = 3f + 1`).
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
            CertificateError::MissingBatch => {
                f.write_str("the pre-prepare names its batch by digest only")
            }
            CertificateError::BadSignature { signer, failure } => {
                write!(
                    f,
                    "the member signed by {signer} is not authentic: {failure}"
                )
            }
            CertificateError::WrongKind { index } => {
                write!(f, "member {index} is of the wrong kind")
            }
            CertificateError::Mismatch { index } => {
                write!(f, "member {index} does not match the others")
            }
            CertificateError::NonMember { replica } => {
                write!(f, "a member names {replica}, not a member of the cluster")
            }
            CertificateError::FromPrimary => f.write_str("a prepare comes from the primary"),
            CertificateError::Duplicate { replica } => {
                write!(f, "two members from {replica}")
            }
            CertificateError::TooFew { have, need } => {
                write!(f, "{have} valid members, {need} needed")
            }
        }
    }
}

impl std::error::Error for CertificateError {}

impl PreparedCertificate {
    /// The pre-prepare the certificate is about, if the first member is one.
    pub fn pre_prepare(&self) -> Option<&PrePrepare> {
        as_pre_prepare(&self.pre_prepare)
    }

    /// Checks every member. On success the batch of
    /// [`pre_prepare`](Self::pre_prepare) was prepared at its view and
    /// number by a quorum that includes at least `f + 1` honest replicas.
    /// The pre-prepare may name its batch by digest only, as view changes
    /// carry it.
    pub fn check(
        &self,
        quorums: &Quorums,
        auth: &dyn Authenticator,
    ) -> Result<(), CertificateError> {
        let pp = check_pre_prepare(&self.pre_prepare, quorums, auth, false)?;
        let primary = quorums.primary(pp.view);
        let members = self.prepares.iter().map(|member| match &member.message {
            Message::Prepare(v) => Some(((v.view, v.seq, v.digest), v.replica, member)),
            _ => None,
        });
        let need = quorums.prepares_needed();
        check_members(
            quorums,
            auth,
            members,
            (pp.view, pp.seq, pp.digest),
            need,
            |r| {
                if r == primary {
                    Err(CertificateError::FromPrimary)
                } else {
                    Ok(())
                }
            },
        )
    }
}

/// Proof that a batch *committed* at `(view, seq)`: the primary's signed
/// pre-prepare and `2f + 1` matching signed commits from distinct
/// replicas. State transfer carries these for the numbers after a
/// checkpoint.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CommittedCertificate {
    /// The primary's pre-prepare, with its signature.
    pub pre_prepare: Signed,
    /// Matching commits from distinct replicas, with their signatures.
    pub commits: Vec<Signed>,
}

impl CommittedCertificate {
    /// The pre-prepare the certificate is about, if the first member is one.
    pub fn pre_prepare(&self) -> Option<&PrePrepare> {
        as_pre_prepare(&self.pre_prepare)
    }

    /// Checks every member: on success the batch committed at its number.
    /// The pre-prepare must carry its batch, which is executed from it.
    pub fn check(
        &self,
        quorums: &Quorums,
        auth: &dyn Authenticator,
    ) -> Result<(), CertificateError> {
        self.check_members(quorums, auth, true)
    }

    /// [`check`](Self::check), with `need_batch` false for a certificate
    /// whose pre-prepare may name its batch by digest only (one a replica
    /// kept for a number it has not executed yet).
    pub(crate) fn check_members(
        &self,
        quorums: &Quorums,
        auth: &dyn Authenticator,
        need_batch: bool,
    ) -> Result<(), CertificateError> {
        let pp = check_pre_prepare(&self.pre_prepare, quorums, auth, need_batch)?;
        let members = self.commits.iter().map(|member| match &member.message {
            Message::Commit(v) => Some(((v.view, v.seq, v.digest), v.replica, member)),
            _ => None,
        });
        let expected = (pp.view, pp.seq, pp.digest);
        check_members(quorums, auth, members, expected, quorums.quorum(), |_| {
            Ok(())
        })
    }
}

impl StableCheckpoint {
    /// Checks the proof: `2f + 1` signed checkpoint messages from distinct
    /// members for this number and digest. The initial state (number 0)
    /// needs no proof.
    pub fn check(
        &self,
        quorums: &Quorums,
        auth: &dyn Authenticator,
    ) -> Result<(), CertificateError> {
        if self.seq == Seq(0) {
            return Ok(());
        }
        let members = self.proof.iter().map(|member| match &member.message {
            Message::Checkpoint(c) => Some(((c.seq, c.digest), c.replica, member)),
            _ => None,
        });
        check_members(
            quorums,
            auth,
            members,
            (self.seq, self.digest),
            quorums.quorum(),
            |_| Ok(()),
        )
    }
}

/// Checks certificate members one by one: each of the right kind (`Some`),
/// matching `expected`, from a distinct member allowed by `allowed`, with a
/// signature that verifies for that member; and at least `need` of them.
fn check_members<'a, K: PartialEq>(
    quorums: &Quorums,
    auth: &dyn Authenticator,
    members: impl Iterator<Item = Option<(K, ReplicaId, &'a Signed)>>,
    expected: K,
    need: usize,
    allowed: impl Fn(ReplicaId) -> Result<(), CertificateError>,
) -> Result<(), CertificateError> {
    let mut seen = vec![false; quorums.n()];
    let mut have = 0;
    for (index, member) in members.enumerate() {
        let Some((key, replica, signed)) = member else {
            return Err(CertificateError::WrongKind { index });
        };
        if key != expected {
            return Err(CertificateError::Mismatch { index });
        }
        let Some(seen) = seen.get_mut(replica.index()) else {
            return Err(CertificateError::NonMember { replica });
        };
        allowed(replica)?;
        if std::mem::replace(seen, true) {
            return Err(CertificateError::Duplicate { replica });
        }
        verify(auth, replica, signed)?;
        have += 1;
    }
    if have < need {
        return Err(CertificateError::TooFew { have, need });
    }
    Ok(())
}

fn as_pre_prepare(signed: &Signed) -> Option<&PrePrepare> {
    match &signed.message {
        Message::PrePrepare(pp) => Some(pp),
        _ => None,
    }
}

/// Checks a certificate's first member: a pre-prepare whose digest is its
/// batch's (when it carries one; it must when `need_batch`), signed by the
/// primary of its view.
fn check_pre_prepare<'a>(
    signed: &'a Signed,
    quorums: &Quorums,
    auth: &dyn Authenticator,
    need_batch: bool,
) -> Result<&'a PrePrepare, CertificateError> {
    let pp = as_pre_prepare(signed).ok_or(CertificateError::NotAPrePrepare)?;
    match &pp.batch {
        Some(batch) if !pp.names(batch) => return Err(CertificateError::DigestMismatch),
        None if need_batch => return Err(CertificateError::MissingBatch),
        _ => {}
    }
    verify(auth, quorums.primary(pp.view), signed)?;
    Ok(pp)
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
    ///
    /// Once the slot has started over in a later view, this is the
    /// certificate from the latest view in which it prepared, if any.
    pub fn prepared_certificate(&self, seq: Seq) -> Option<PreparedCertificate> {
        let slot = self.log.get(seq)?;
        if !slot.commit_sent {
            return slot.carried.clone();
        }
        let Some(mut pp) = slot.pre_prepare.clone() else {
            return slot.carried.clone();
        };
        if pp.batch.is_none() {
            // Named by digest in a new view: an earlier certificate here may
            // still hold the batch.
            pp.batch = slot.batch_for(pp.digest).cloned();
        }
        // A slot committed through state transfer holds no prepares: it has
        // no prepared certificate of its own to offer.
        if slot.prepares.matching(pp.digest) < self.quorums.prepares_needed() {
            return slot.carried.clone();
        }
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
