//! A follower node (`serve --follow URL`): every `interval` it copies the leader's projects,
//! key records and live key hashes (`GET /api/v1/admin/fleet` with the leader's admin
//! token; hashes only, no plaintext key crosses) into its own store and key index, so nodes
//! behind one load balancer accept the same keys. A follower refuses to create or change
//! projects and keys itself (`http::route`). Touches the accounts (store tables, key index,
//! tiers); nothing of samples.

use super::Accounts;
use crate::outbound::Outbound;
use crate::store::{Project, Webhook};
use serde::{Deserialize, Serialize};
use std::time::Duration;

/// The largest fleet answer taken from a leader.
const MAX_ANSWER_BYTES: usize = 64 << 20;

/// What a leader serves and a follower copies.
#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Fleet {
    pub projects: Vec<Project>,
    pub webhooks: Vec<Webhook>,
    /// (hex blake3 of a live key, its record's id).
    pub live_keys: Vec<(String, String)>,
}

impl Fleet {
    /// This node's accounts, as a leader serves them.
    pub fn of(accounts: &Accounts) -> Result<Fleet, String> {
        let store = &accounts.store;
        Ok(Fleet {
            projects: store.projects().map_err(|e| e.to_string())?,
            webhooks: store.webhooks().map_err(|e| e.to_string())?,
            live_keys: store
                .api_keys()
                .map_err(|e| e.to_string())?
                .into_iter()
                .map(|(h, id)| (crate::auth::hex(&h), id))
                .collect(),
        })
    }
}

#[derive(Clone)]
pub struct Follow {
    /// The leader's base URL.
    pub leader: String,
    /// The leader's admin token (read from `--follow-token-file`).
    pub token: String,
    pub interval: Duration,
}

impl std::fmt::Debug for Follow {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "Follow {{ leader: {:?}, interval: {:?} }}",
            self.leader, self.interval
        )
    }
}

/// Copies the leader's accounts now and then every interval, until the process ends.
pub async fn run(follow: Follow, accounts: Accounts, outbound: Outbound) {
    let mut tick = tokio::time::interval(follow.interval);
    let mut failing = false;
    loop {
        tick.tick().await;
        match sync_once(&follow, &accounts, &outbound).await {
            Ok(n) => {
                if failing {
                    tracing::info!(leader = %follow.leader, keys = n, "following the leader again");
                }
                failing = false;
            }
            Err(e) => {
                if !failing {
                    tracing::warn!(leader = %follow.leader, error = %e,
                        "could not copy the leader's keys; the last copy stays in force");
                }
                failing = true;
            }
        }
    }
}

/// One copy; returns the number of live keys.
pub async fn sync_once(
    follow: &Follow,
    accounts: &Accounts,
    outbound: &Outbound,
) -> Result<usize, String> {
    let url = format!("{}/api/v1/admin/fleet", follow.leader.trim_end_matches('/'));
    let auth = [("Authorization", format!("Bearer {}", follow.token))];
    let r = outbound
        .get(&url, &auth, MAX_ANSWER_BYTES)
        .await
        .map_err(|e| e.to_string())?;
    if r.status != 200 {
        return Err(format!(
            "the leader answered {}: {}",
            r.status,
            String::from_utf8_lossy(&r.body)
                .chars()
                .take(200)
                .collect::<String>()
        ));
    }
    let fleet: Fleet = serde_json::from_slice(&r.body)
        .map_err(|e| format!("the leader's answer is not a fleet record: {e}"))?;
    let mut live = Vec::with_capacity(fleet.live_keys.len());
    for (hex, id) in &fleet.live_keys {
        let hash = crate::auth::unhex32(hex).ok_or_else(|| {
            format!("the leader sent a key hash that is not 64 hex digits: {hex:?}")
        })?;
        live.push((hash, id.clone()));
    }
    let accounts = accounts.clone();
    let n = live.len();
    tokio::task::spawn_blocking(move || -> Result<(), String> {
        accounts
            .store
            .replace_accounts(&fleet.projects, &fleet.webhooks, &live)
            .map_err(|e| e.to_string())?;
        accounts
            .keys
            .replace_with(crate::auth::key_index(&fleet.webhooks, live));
        for p in &fleet.projects {
            accounts.limiter.set_tier(&p.id, p.tier);
        }
        Ok(())
    })
    .await
    .map_err(|e| e.to_string())??;
    Ok(n)
}
