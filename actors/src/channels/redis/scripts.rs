//! The Lua scripts, one per step that must be atomic in Redis. Their
//! sources are in `scripts/`, each with its keys and arguments described
//! at the top; `live.lua` is a helper put in front of the scripts that
//! count connections on live nodes only.

use redis::Script;

pub(super) struct Scripts {
    pub(super) publish: Script,
    pub(super) recover: Script,
    pub(super) history: Script,
    pub(super) presence_set: Script,
    pub(super) presence_list: Script,
    pub(super) admit: Script,
    pub(super) release: Script,
    pub(super) restore: Script,
    pub(super) heartbeat: Script,
    pub(super) sweep: Script,
    pub(super) decide: Script,
}

impl Scripts {
    pub(super) fn new() -> Self {
        // Redis runs each script alone, with no shared functions, so the
        // helper travels inside every script that calls it.
        let with_live =
            |body: &str| Script::new(&format!("{}\n{body}", include_str!("scripts/live.lua")));
        Scripts {
            publish: Script::new(include_str!("scripts/publish.lua")),
            recover: Script::new(include_str!("scripts/recover.lua")),
            history: Script::new(include_str!("scripts/history.lua")),
            presence_set: with_live(include_str!("scripts/presence_set.lua")),
            presence_list: Script::new(include_str!("scripts/presence_list.lua")),
            admit: with_live(include_str!("scripts/admit.lua")),
            release: Script::new(include_str!("scripts/release.lua")),
            restore: Script::new(include_str!("scripts/restore.lua")),
            heartbeat: Script::new(include_str!("scripts/heartbeat.lua")),
            sweep: with_live(include_str!("scripts/sweep.lua")),
            decide: Script::new(include_str!("scripts/decide.lua")),
        }
    }
}
