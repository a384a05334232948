//! Why a view change or a new view is refused.

use std::fmt;

use crate::auth::AuthFailure;
use crate::certificate::CertificateError;
use crate::types::{ReplicaId, Seq, View};

/// Why a view-change message is invalid.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ViewChangeError {
    /// The stable checkpoint's proof does not check.
    Checkpoint(CertificateError),
    /// A prepared certificate does not check.
    Prepared {
        /// Its sequence number.
        seq: Seq,
        /// What is wrong with it.
        error: CertificateError,
    },
    /// A certificate lies outside the window above the checkpoint, or the
    /// certificates are not in increasing sequence order (two for one
    /// number, say).
    PreparedOutOfOrder {
        /// The number at fault.
        seq: Seq,
    },
    /// A certificate from a view at or after the view being changed to.
    PreparedFromFuture {
        /// The number.
        seq: Seq,
        /// The certificate's view.
        view: View,
    },
}

impl fmt::Display for ViewChangeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ViewChangeError::Checkpoint(e) => write!(f, "checkpoint proof: {e}"),
            ViewChangeError::Prepared { seq, error } => {
                write!(f, "prepared certificate for {seq}: {error}")
            }
            ViewChangeError::PreparedOutOfOrder { seq } => {
                write!(
                    f,
                    "prepared certificate for {seq} is out of order or window"
                )
            }
            ViewChangeError::PreparedFromFuture { seq, view } => {
                write!(f, "prepared certificate for {seq} is from {view}, too late")
            }
        }
    }
}

/// Why a new-view message is invalid.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum NewViewError {
    /// A member of `V` is not a view change for this view.
    NotAViewChange {
        /// Its position.
        index: usize,
    },
    /// A member of `V` names a replica outside the cluster.
    NonMember {
        /// The replica named.
        replica: ReplicaId,
    },
    /// Two members of `V` from the same replica.
    Duplicate {
        /// The replica.
        replica: ReplicaId,
    },
    /// A member of `V` is not signed by the replica it names.
    Unauthentic {
        /// The replica named.
        replica: ReplicaId,
        /// What is wrong with the signature.
        failure: AuthFailure,
    },
    /// A member of `V` is an invalid view change.
    InvalidViewChange {
        /// Its sender.
        replica: ReplicaId,
        /// What is wrong with it.
        error: ViewChangeError,
    },
    /// Fewer view changes than a quorum.
    TooFew {
        /// How many valid ones.
        have: usize,
        /// How many are needed.
        need: usize,
    },
    /// `O` is not what `V` determines.
    WrongPrePrepares,
    /// A pre-prepare in `O` is not signed by the new primary.
    UnsignedPrePrepare {
        /// Its number.
        seq: Seq,
        /// What is wrong with the signature.
        failure: AuthFailure,
    },
}

impl fmt::Display for NewViewError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            NewViewError::NotAViewChange { index } => {
                write!(f, "member {index} is not a view change for this view")
            }
            NewViewError::NonMember { replica } => write!(f, "{replica} is not a member"),
            NewViewError::Duplicate { replica } => write!(f, "two view changes from {replica}"),
            NewViewError::Unauthentic { replica, failure } => {
                write!(
                    f,
                    "the view change of {replica} is not authentic: {failure}"
                )
            }
            NewViewError::InvalidViewChange { replica, error } => {
                write!(f, "the view change of {replica} is invalid: {error}")
            }
            NewViewError::TooFew { have, need } => {
                write!(f, "{have} valid view changes, {need} needed")
            }
            NewViewError::WrongPrePrepares => {
                f.write_str("the pre-prepares are not the ones the view changes determine")
            }
            NewViewError::UnsignedPrePrepare { seq, failure } => {
                write!(
                    f,
                    "the pre-prepare for {seq} is not the primary's: {failure}"
                )
            }
        }
    }
}
