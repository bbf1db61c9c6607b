//! The peer manager's ledger: every peer's score, what it did wrong, and who is banned.
//!
//! Data enters as [`Offence`]s: from the node through
//! [`NetworkHandle::report_validation`](crate::NetworkHandle::report_validation) (a Reject
//! verdict on a gossip message, charged to the peer that forwarded it) and
//! [`NetworkHandle::penalize`](crate::NetworkHandle::penalize) (a sync answer that lies or
//! does not decode, an item a peer announced and then did not serve), and from the event loop
//! itself (oversized gossip, an undecodable sync request, requests over the rate limit, an
//! identify protocol of another network). Each offence lowers the score by its own
//! [`Offence::penalty`]; the score decays back toward zero with a half-life of
//! [`SCORE_HALF_LIFE`]. At or below [`DISCONNECT_SCORE`] the peer is disconnected and shut
//! out until its score has decayed above [`READMIT_SCORE`] (ten minutes for a peer just below
//! the threshold); a shut-out peer that reconnects anyway, and any peer at or below
//! [`BAN_SCORE`], is banned for [`BAN_DURATION`]: the swarm refuses its connections, however
//! often it reconnects. What leaves is an [`Action`] for the event loop, and the figures shown by
//! [`NetworkHandle::peers`](crate::NetworkHandle::peers) and
//! [`NetworkHandle::bans`](crate::NetworkHandle::bans).
//!
//! Scores are local policy, not consensus: floats are fine here. The ledger is shared between
//! the handles and the event loop (behind one mutex), so a verdict's penalty is counted before
//! the call returns and the node can stop validating what a banned peer sent at once.
//!
//! Memory is bounded: at most [`MAX_SCORED_PEERS`] scores (peers whose score has decayed to
//! nothing are forgotten first, then the mildest) and [`MAX_BANS`] bans (the one ending
//! soonest goes first).

use std::collections::HashMap;
use std::time::{Duration, Instant};

use libp2p::PeerId;

/// A score at or below this disconnects the peer.
pub const DISCONNECT_SCORE: f64 = -20.0;
/// A peer disconnected for its score is let back in once its score is above this.
pub const READMIT_SCORE: f64 = DISCONNECT_SCORE / 2.0;
/// A score at or below this bans the peer for [`BAN_DURATION`].
pub const BAN_SCORE: f64 = -50.0;
/// The lowest score kept: a peer cannot dig itself so deep that it never recovers.
pub const MIN_SCORE: f64 = -100.0;
/// Time for a score to decay halfway back to zero.
pub const SCORE_HALF_LIFE: Duration = Duration::from_secs(10 * 60);
/// How long a ban lasts. A peer banned again while banned is banned for this long from then.
pub const BAN_DURATION: Duration = Duration::from_secs(30 * 60);
/// Most peers whose score is remembered (connected or not).
pub const MAX_SCORED_PEERS: usize = 4096;
/// Most bans held at once.
pub const MAX_BANS: usize = 1024;
/// A score closer to zero than this is forgotten.
const NEGLIGIBLE_SCORE: f64 = 0.01;

/// Something a peer did wrong, each with its own penalty (see [`Offence::penalty`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Offence {
    /// A block or compact block that fails validation (bad proof of work, wrong chain, a
    /// model hash that does not follow, bytes that do not decode).
    InvalidBlock,
    /// A submission or submission announcement that fails validation (bad ring signature,
    /// wrong shape, undecodable).
    InvalidSubmission,
    /// A registration that fails validation (forged authority signature, weak stamp,
    /// undecodable).
    InvalidRegistration,
    /// Gossip larger than its topic's limit, or on a topic that is not ours.
    OversizedGossip,
    /// A sync answer that does not decode, is not what was asked, or contradicts the peer's
    /// own status (claiming more work than its chain carries, blocks it did not have).
    BadSyncResponse,
    /// An item the peer announced (a submission, a compact block's body) that it then could
    /// not serve.
    NotServed,
    /// A sync request that does not decode or exceeds a request limit.
    MalformedRequest,
    /// A sync request over the per-peer rate limit.
    RateLimited,
    /// A status or identify answer of another chain or protocol version: the peer is not of
    /// this network, and nothing it sends can be used.
    WrongNetwork,
}

impl Offence {
    /// Every offence.
    pub const ALL: [Offence; 9] = [
        Offence::InvalidBlock,
        Offence::InvalidSubmission,
        Offence::InvalidRegistration,
        Offence::OversizedGossip,
        Offence::BadSyncResponse,
        Offence::NotServed,
        Offence::MalformedRequest,
        Offence::RateLimited,
        Offence::WrongNetwork,
    ];

    /// How far this offence lowers the score. Invalid content costs 10 (disconnected after
    /// 2, banned after 5), so a flood ends within a handful of messages while one bad message
    /// among many good ones (an honest node that relayed a block it could not yet check
    /// fully, say) costs little and decays; what an honest peer can do by accident (not
    /// serving an item it just dropped, a request over the rate) costs 1 to 3; another
    /// network's peer is banned at once.
    pub fn penalty(self) -> f64 {
        match self {
            Offence::InvalidBlock
            | Offence::InvalidSubmission
            | Offence::InvalidRegistration
            | Offence::OversizedGossip
            | Offence::BadSyncResponse => 10.0,
            Offence::MalformedRequest => 5.0,
            Offence::NotServed => 3.0,
            Offence::RateLimited => 2.0,
            Offence::WrongNetwork => -BAN_SCORE,
        }
    }

    /// The offence's name in logs and RPC answers.
    pub fn name(self) -> &'static str {
        match self {
            Offence::InvalidBlock => "invalid_block",
            Offence::InvalidSubmission => "invalid_submission",
            Offence::InvalidRegistration => "invalid_registration",
            Offence::OversizedGossip => "oversized_gossip",
            Offence::BadSyncResponse => "bad_sync_response",
            Offence::NotServed => "not_served",
            Offence::MalformedRequest => "malformed_request",
            Offence::RateLimited => "rate_limited",
            Offence::WrongNetwork => "wrong_network",
        }
    }
}

impl std::fmt::Display for Offence {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// What the event loop must do after a penalty.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Action {
    /// Nothing.
    None,
    /// Close every connection to the peer.
    Disconnect,
    /// Close every connection and refuse new ones until the ban ends.
    Ban,
}

/// One peer's score and record.
#[derive(Clone, Debug)]
struct Entry {
    /// The score at `at`.
    score: f64,
    at: Instant,
    offences: u64,
    last: Offence,
    /// Disconnected for its score and not yet readmitted.
    shut_out: bool,
}

impl Entry {
    fn score_at(&self, now: Instant) -> f64 {
        decayed(self.score, now.saturating_duration_since(self.at))
    }
}

/// A ban in force.
#[derive(Clone, Debug)]
struct BanEntry {
    until: Instant,
    reason: Offence,
}

/// A peer's standing, as the RPC shows it.
#[derive(Clone, Debug, PartialEq)]
pub struct Standing {
    /// The score now (0 for a peer that never offended; negative after offences).
    pub score: f64,
    /// Offences counted against it.
    pub offences: u64,
    /// The most recent offence.
    pub last_offence: Option<Offence>,
}

/// A ban, as [`NetworkHandle::bans`](crate::NetworkHandle::bans) lists it.
#[derive(Clone, Debug, PartialEq)]
pub struct BanInfo {
    /// The banned peer.
    pub peer_id: PeerId,
    /// Time left.
    pub remaining: Duration,
    /// The offence that brought the score to the ban threshold.
    pub reason: Offence,
    /// The peer's score now.
    pub score: f64,
    /// Offences counted against it.
    pub offences: u64,
}

/// `score` after `elapsed` of exponential decay toward zero.
fn decayed(score: f64, elapsed: Duration) -> f64 {
    score * 0.5f64.powf(elapsed.as_secs_f64() / SCORE_HALF_LIFE.as_secs_f64())
}

/// Scores and bans (see the module docs).
#[derive(Debug)]
pub(crate) struct Scoreboard {
    entries: HashMap<PeerId, Entry>,
    bans: HashMap<PeerId, BanEntry>,
    /// Whether scores disconnect and ban (see `NetConfig::enforce_peer_scores`).
    enforce: bool,
}

impl Default for Scoreboard {
    fn default() -> Self {
        Scoreboard::new(true)
    }
}

impl Scoreboard {
    /// An empty ledger; with `enforce` off, offences are counted and scored but nobody is
    /// disconnected or banned.
    pub(crate) fn new(enforce: bool) -> Self {
        Scoreboard { entries: HashMap::new(), bans: HashMap::new(), enforce }
    }

    /// Charges `offence` to `peer` at `now` and says what to do about it.
    pub(crate) fn penalize(&mut self, peer: PeerId, offence: Offence, now: Instant) -> Action {
        if !self.entries.contains_key(&peer) && self.entries.len() >= MAX_SCORED_PEERS {
            self.make_room(now);
        }
        let entry =
            self.entries.entry(peer).or_insert(Entry { score: 0.0, at: now, offences: 0, last: offence, shut_out: false });
        let score = (entry.score_at(now) - offence.penalty()).max(MIN_SCORE);
        let shut_out = entry.shut_out || score <= DISCONNECT_SCORE;
        *entry = Entry { score, at: now, offences: entry.offences + 1, last: offence, shut_out };
        if !self.enforce {
            Action::None
        } else if score <= BAN_SCORE {
            self.insert_ban(peer, now, offence);
            Action::Ban
        } else if score <= DISCONNECT_SCORE {
            Action::Disconnect
        } else {
            Action::None
        }
    }

    /// Bans `peer`, which reconnected while shut out, for [`BAN_DURATION`] from `now`, for its
    /// last offence. Whether it was not banned already.
    pub(crate) fn ban_returning(&mut self, peer: PeerId, now: Instant) -> Option<Offence> {
        if !self.enforce || self.is_banned(&peer, now) {
            return None;
        }
        let reason = self.entries.get(&peer)?.last;
        self.insert_ban(peer, now, reason);
        Some(reason)
    }

    fn insert_ban(&mut self, peer: PeerId, now: Instant, reason: Offence) {
        if !self.bans.contains_key(&peer) && self.bans.len() >= MAX_BANS {
            let soonest = self.bans.iter().min_by_key(|(_, b)| b.until).map(|(p, _)| *p);
            if let Some(p) = soonest {
                self.bans.remove(&p);
            }
        }
        self.bans.insert(peer, BanEntry { until: now + BAN_DURATION, reason });
    }

    /// Drops the scores that have decayed to nothing and, if that is not enough, the
    /// mildest one.
    fn make_room(&mut self, now: Instant) {
        self.entries.retain(|_, e| e.score_at(now).abs() >= NEGLIGIBLE_SCORE);
        if self.entries.len() >= MAX_SCORED_PEERS {
            let mildest = self
                .entries
                .iter()
                .filter(|(p, _)| !self.bans.contains_key(p))
                .max_by(|a, b| a.1.score_at(now).total_cmp(&b.1.score_at(now)))
                .map(|(p, _)| *p);
            if let Some(p) = mildest {
                self.entries.remove(&p);
            }
        }
    }

    /// `peer`'s standing at `now`.
    pub(crate) fn standing(&self, peer: &PeerId, now: Instant) -> Standing {
        match self.entries.get(peer) {
            Some(e) => Standing { score: e.score_at(now), offences: e.offences, last_offence: Some(e.last) },
            None => Standing { score: 0.0, offences: 0, last_offence: None },
        }
    }

    /// Whether `peer` is banned at `now`.
    pub(crate) fn is_banned(&self, peer: &PeerId, now: Instant) -> bool {
        self.bans.get(peer).is_some_and(|b| b.until > now)
    }

    /// Whether `peer` should not be connected at `now`: banned, or disconnected for its score
    /// and not yet back above [`READMIT_SCORE`].
    pub(crate) fn is_unwelcome(&self, peer: &PeerId, now: Instant) -> bool {
        self.enforce
            && (self.is_banned(peer, now)
                || self.entries.get(peer).is_some_and(|e| e.shut_out && e.score_at(now) <= READMIT_SCORE))
    }

    /// Ends the bans that are over at `now` and returns their peers.
    pub(crate) fn expire_bans(&mut self, now: Instant) -> Vec<PeerId> {
        let over: Vec<PeerId> = self.bans.iter().filter(|(_, b)| b.until <= now).map(|(p, _)| *p).collect();
        for p in &over {
            self.bans.remove(p);
        }
        over
    }

    /// The bans in force at `now`, longest remaining first.
    pub(crate) fn bans(&self, now: Instant) -> Vec<BanInfo> {
        let mut out: Vec<BanInfo> = self
            .bans
            .iter()
            .filter(|(_, b)| b.until > now)
            .map(|(peer, b)| {
                let standing = self.standing(peer, now);
                BanInfo {
                    peer_id: *peer,
                    remaining: b.until - now,
                    reason: b.reason,
                    score: standing.score,
                    offences: standing.offences,
                }
            })
            .collect();
        out.sort_by(|a, b| b.remaining.cmp(&a.remaining).then(a.peer_id.cmp(&b.peer_id)));
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn peer() -> PeerId {
        PeerId::random()
    }

    #[test]
    fn one_bad_message_costs_little_and_decays() {
        let mut board = Scoreboard::default();
        let p = peer();
        let t0 = Instant::now();
        assert_eq!(board.penalize(p, Offence::InvalidBlock, t0), Action::None);
        assert_eq!(board.standing(&p, t0).score, -10.0);
        let later = t0 + SCORE_HALF_LIFE;
        assert!((board.standing(&p, later).score + 5.0).abs() < 1e-9);
        let much_later = t0 + SCORE_HALF_LIFE * 20;
        assert!(board.standing(&p, much_later).score.abs() < 1e-4);
        assert!(!board.is_banned(&p, t0));
        assert!(!board.is_unwelcome(&p, t0));
    }

    #[test]
    fn repeated_offences_disconnect_then_ban() {
        let mut board = Scoreboard::default();
        let p = peer();
        let t = Instant::now();
        let actions: Vec<Action> = (0..5).map(|_| board.penalize(p, Offence::InvalidSubmission, t)).collect();
        assert_eq!(actions, [Action::None, Action::Disconnect, Action::Disconnect, Action::Disconnect, Action::Ban]);
        assert!(board.is_banned(&p, t));
        assert!(board.is_unwelcome(&p, t));
        let bans = board.bans(t);
        assert_eq!(bans.len(), 1);
        assert_eq!(bans[0].reason, Offence::InvalidSubmission);
        assert_eq!(bans[0].offences, 5);
        assert_eq!(bans[0].remaining, BAN_DURATION);
        // The ban ends on time; by then the score has decayed well above the threshold.
        let after = t + BAN_DURATION;
        assert_eq!(board.expire_bans(after), vec![p]);
        assert!(!board.is_banned(&p, after));
        assert!(board.standing(&p, after).score > DISCONNECT_SCORE);
        assert!(!board.is_unwelcome(&p, after));
    }

    #[test]
    fn a_slow_trickle_of_mistakes_never_disconnects() {
        // One invalid block every 15 minutes: the decay keeps up. The score settles at
        // −10 / (1 − 2^−1.5) ≈ −15.5, above the disconnect threshold.
        let mut board = Scoreboard::default();
        let p = peer();
        let t0 = Instant::now();
        let every = Duration::from_secs(15 * 60);
        for i in 0..100u32 {
            let action = board.penalize(p, Offence::InvalidBlock, t0 + every * i);
            assert_eq!(action, Action::None, "offence {i}");
        }
        let settled = board.standing(&p, t0 + every * 99).score;
        assert!((settled + 10.0 / (1.0 - 0.5f64.powf(1.5))).abs() < 1e-6, "{settled}");
        // Twice as often would disconnect: the score would settle at about −34.
        let mut board = Scoreboard::default();
        let actions: Vec<Action> =
            (0..10u32).map(|i| board.penalize(p, Offence::InvalidBlock, t0 + every / 3 * i)).collect();
        assert!(actions.contains(&Action::Disconnect));
        assert!(!actions.contains(&Action::Ban));
    }

    #[test]
    fn a_disconnected_peer_is_readmitted_only_once_its_score_recovers() {
        let mut board = Scoreboard::default();
        let p = peer();
        let t = Instant::now();
        board.penalize(p, Offence::InvalidBlock, t);
        assert!(!board.is_unwelcome(&p, t), "−10 alone does not shut a peer out");
        assert_eq!(board.penalize(p, Offence::InvalidBlock, t), Action::Disconnect);
        assert!(board.is_unwelcome(&p, t));
        // Just above the disconnect threshold is not enough...
        assert!(board.is_unwelcome(&p, t + Duration::from_secs(60)));
        // ...one half-life later (−10) it is still shut out, just after it is back.
        assert!(board.is_unwelcome(&p, t + SCORE_HALF_LIFE));
        assert!(!board.is_unwelcome(&p, t + SCORE_HALF_LIFE + Duration::from_secs(5)));
        // Coming back while shut out bans it, for its last offence, once.
        let back = t + Duration::from_secs(60);
        assert_eq!(board.ban_returning(p, back), Some(Offence::InvalidBlock));
        assert!(board.is_banned(&p, back));
        assert_eq!(board.ban_returning(p, back), None);
        assert_eq!(board.bans(back)[0].remaining, BAN_DURATION);
        // A peer that never offended is never banned this way.
        assert_eq!(board.ban_returning(peer(), back), None);
    }

    #[test]
    fn another_network_is_banned_at_once() {
        let mut board = Scoreboard::default();
        let p = peer();
        assert_eq!(board.penalize(p, Offence::WrongNetwork, Instant::now()), Action::Ban);
    }

    #[test]
    fn without_enforcement_offences_are_only_counted() {
        let mut board = Scoreboard::new(false);
        let p = peer();
        let t = Instant::now();
        for _ in 0..10 {
            assert_eq!(board.penalize(p, Offence::InvalidBlock, t), Action::None);
        }
        assert_eq!(board.standing(&p, t).offences, 10);
        assert!(!board.is_banned(&p, t) && !board.is_unwelcome(&p, t));
        assert!(board.bans(t).is_empty());
    }

    #[test]
    fn the_score_has_a_floor() {
        let mut board = Scoreboard::default();
        let p = peer();
        let t = Instant::now();
        for _ in 0..1000 {
            board.penalize(p, Offence::InvalidBlock, t);
        }
        assert_eq!(board.standing(&p, t).score, MIN_SCORE);
        // From the floor, a ban's length of decay brings it back to where one offence would
        // not ban again.
        assert!(board.standing(&p, t + BAN_DURATION).score > BAN_SCORE + Offence::InvalidBlock.penalty());
    }

    #[test]
    fn memory_is_bounded() {
        let mut board = Scoreboard::default();
        let t = Instant::now();
        for _ in 0..MAX_SCORED_PEERS + 10 {
            board.penalize(peer(), Offence::RateLimited, t);
        }
        assert!(board.entries.len() <= MAX_SCORED_PEERS);
        for _ in 0..MAX_BANS + 10 {
            board.penalize(peer(), Offence::WrongNetwork, t);
        }
        assert!(board.bans.len() <= MAX_BANS);
        assert!(board.entries.len() <= MAX_SCORED_PEERS);
    }
}
