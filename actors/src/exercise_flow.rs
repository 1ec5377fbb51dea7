//! `ExerciseFlow`: guided exercises. It answers button clicks, keeps each
//! player's started runs, and records one durable progress marker per
//! completed run. Store writes run on the blocking thread pool; the reply
//! waits for the commit, so a marker the player sees is never lost. The
//! player's other connections (another device) hear of a new marker too.

use std::collections::HashMap;
use std::sync::Arc;

use actix::prelude::*;
use uuid::Uuid;

use crate::chat_server::{ChatServer, SendToPlayer};
use crate::model::ids::{ClientRef, ConnId, PlayerId, SessionId};
use crate::model::progress::{MarkerId, ProgressMarker};
use crate::model::time::Timestamp;
use crate::protocol::{
    ChatMessage, Element, ErrorCode, ErrorFrame, ExerciseEvent, ExerciseMetadata, MessageContent,
    MessageMetadata, Role, ServerFrame,
};
use crate::store::progress::{SharedProgressStore, StoreError};
use crate::support::bounded::forget_oldest_tenth;
use crate::support::metered::Metered;
use crate::support::metrics::{ActorKind, Metrics};
use crate::therapy::exercises::{Catalogue, Exercise};

/// A validated `interaction` (a button click).
#[derive(Message)]
#[rtype(result = "Result<ChatMessage, FlowError>")]
pub struct HandleInteraction {
    pub player: PlayerId,
    pub conn: ConnId,
    pub session_id: SessionId,
    pub button_id: String,
    pub reply_to: Option<ClientRef>,
}

/// How many progress writes are still in flight (for a graceful shutdown).
#[derive(Message, Debug)]
#[rtype(result = "usize")]
pub struct PendingWrites;

#[derive(Debug, thiserror::Error)]
pub enum FlowError {
    #[error("progress could not be saved")]
    Store(#[from] StoreError),
    #[error("progress could not be saved: the store task failed")]
    StoreTask,
}

impl FlowError {
    /// What the player is told: the bound is theirs to know about; a store
    /// failure says only that nothing was saved.
    pub fn error_frame(&self) -> ErrorFrame {
        match self {
            FlowError::Store(StoreError::LimitReached) => ErrorFrame::new(
                ErrorCode::LimitExceeded,
                "this player holds as many progress markers as one may keep; this one was not recorded",
            ),
            other => ErrorFrame::new(ErrorCode::Internal, other.to_string()),
        }
    }
}

/// A player's latest run of each exercise, and when they were last active.
#[derive(Default)]
struct PlayerRuns {
    runs: HashMap<String, Run>,
    touched: u64,
}

/// One started exercise. Its key names the run in the store, which is what
/// makes a repeated completion record nothing new.
struct Run {
    key: String,
    marker: Option<MarkerId>,
    recorded: bool,
}

pub struct ExerciseFlow {
    catalogue: Arc<Catalogue>,
    chat_server: Metered<ChatServer>,
    metrics: Arc<Metrics>,
    store: SharedProgressStore,
    runs: HashMap<PlayerId, PlayerRuns>,
    /// Stamps which players were active most recently.
    clock: u64,
    max_players: usize,
    pending_writes: usize,
}

const COMPLETE_SUFFIX: &str = "_complete";

impl ExerciseFlow {
    pub fn new(
        catalogue: Arc<Catalogue>,
        chat_server: Metered<ChatServer>,
        store: SharedProgressStore,
        max_players: usize,
        metrics: Arc<Metrics>,
    ) -> Self {
        ExerciseFlow {
            catalogue,
            chat_server,
            metrics,
            store,
            runs: HashMap::new(),
            clock: 0,
            max_players: max_players.max(1),
            pending_writes: 0,
        }
    }

    fn reply(
        msg: &HandleInteraction,
        event: ExerciseEvent,
        exercise: Option<&Exercise>,
        elements: Vec<Element>,
    ) -> ChatMessage {
        ChatMessage::new(
            Role::Interactive,
            Some(msg.session_id.clone()),
            msg.reply_to.clone(),
            MessageContent::new("", elements),
            MessageMetadata::Exercise(ExerciseMetadata {
                event,
                exercise_id: exercise.map(|e| e.id.clone()),
            }),
        )
    }

    fn start(&mut self, msg: &HandleInteraction, exercise: &Exercise) -> ChatMessage {
        if !self.runs.contains_key(&msg.player) && self.runs.len() >= self.max_players {
            // An unfinished run of a long-idle player is cheap to lose (they
            // start again); an unbounded map is not.
            forget_oldest_tenth(&mut self.runs, |player| player.touched);
        }
        self.clock += 1;
        let player = self.runs.entry(msg.player.clone()).or_default();
        player.touched = self.clock;
        player.runs.insert(
            exercise.id.clone(),
            Run {
                key: Uuid::new_v4().simple().to_string(),
                marker: None,
                recorded: false,
            },
        );
        Self::reply(
            msg,
            ExerciseEvent::ExerciseStarted,
            Some(exercise),
            vec![
                Element::Instruction {
                    id: format!("{}_steps", exercise.id),
                    label: exercise.steps.clone(),
                },
                Element::Button {
                    id: format!("{}{COMPLETE_SUFFIX}", exercise.id),
                    label: "Complete".into(),
                },
            ],
        )
    }

    fn complete(
        &mut self,
        msg: HandleInteraction,
        exercise: Exercise,
    ) -> ResponseActFuture<Self, Result<ChatMessage, FlowError>> {
        let run = self
            .runs
            .get_mut(&msg.player)
            .and_then(|player| player.runs.get_mut(&exercise.id));
        let Some(run) = run else {
            let reply = Self::reply(
                &msg,
                ExerciseEvent::StartFirst,
                Some(&exercise),
                vec![
                    Element::Instruction {
                        id: format!("{}_start_first", exercise.id),
                        label: format!("Start \"{}\" first, then press Complete.", exercise.title),
                    },
                    Element::offer(&exercise),
                ],
            );
            return Box::pin(fut::ready(Ok(reply)));
        };
        // The marker id is fixed when the run is first completed; a repeat
        // re-sends the same id to the store, which keeps the first one.
        let marker_id = run.marker.get_or_insert_with(MarkerId::generate).clone();
        let marker = ProgressMarker {
            marker_id,
            marker_type: exercise.marker_type(),
            description: exercise.completion_description(),
            achieved_at: Timestamp::now(),
            therapeutic_value: exercise.therapeutic_value,
            related_goal_id: None,
            session_id: Some(msg.session_id.clone()),
        };
        let run_key = run.key.clone();
        let store = self.store.clone();
        let player = msg.player.clone();
        let write = actix_rt::task::spawn_blocking(move || store.record(&player, &run_key, marker));
        self.pending_writes += 1;
        Box::pin(write.into_actor(self).map(move |written, act, _| {
            act.pending_writes -= 1;
            let stored = match written {
                Ok(Ok(stored)) => stored,
                Ok(Err(StoreError::LimitReached)) => {
                    log::warn!(player_id:% = msg.player; "progress_limit_reached");
                    return Err(FlowError::Store(StoreError::LimitReached));
                }
                Ok(Err(err)) => {
                    log::error!(player_id:% = msg.player, error:% = err; "progress_write_failed");
                    return Err(FlowError::Store(err));
                }
                Err(err) => {
                    log::error!(player_id:% = msg.player, error:% = err; "progress_write_failed");
                    return Err(FlowError::StoreTask);
                }
            };
            let first_time = act.mark_recorded(&msg.player, &exercise.id, &stored.marker_id);
            if first_time {
                log::info!(player_id:% = msg.player, marker_id:% = stored.marker_id, exercise:% = exercise.id; "progress_recorded");
                act.tell_other_connections(&msg, &exercise, &stored.marker_id);
            }
            Ok(Self::reply(
                &msg,
                ExerciseEvent::ExerciseCompleted,
                Some(&exercise),
                vec![Element::Progress {
                    id: stored.marker_id,
                    label: "Progress recorded".into(),
                }],
            ))
        }))
    }
}

impl ExerciseFlow {
    /// True when this write is the run's first success.
    fn mark_recorded(&mut self, player: &PlayerId, exercise_id: &str, marker: &MarkerId) -> bool {
        let run = self
            .runs
            .get_mut(player)
            .and_then(|player| player.runs.get_mut(exercise_id))
            .filter(|run| run.marker.as_ref() == Some(marker));
        match run {
            Some(run) if !run.recorded => {
                run.recorded = true;
                true
            }
            Some(_) => false,
            // The run was replaced or forgotten meanwhile: the marker is new
            // to this actor either way.
            None => true,
        }
    }

    fn tell_other_connections(
        &self,
        msg: &HandleInteraction,
        exercise: &Exercise,
        marker: &MarkerId,
    ) {
        let news = ChatMessage::new(
            Role::System,
            Some(msg.session_id.clone()),
            None,
            MessageContent::new(
                format!("Progress recorded: {}.", exercise.title),
                vec![Element::Progress {
                    id: marker.clone(),
                    label: "Progress recorded".into(),
                }],
            ),
            MessageMetadata::Exercise(ExerciseMetadata {
                event: ExerciseEvent::ProgressRecorded,
                exercise_id: Some(exercise.id.clone()),
            }),
        );
        self.chat_server.do_send(SendToPlayer {
            player: msg.player.clone(),
            frame: ServerFrame::Message(news),
            except: Some(msg.conn),
        });
    }
}

impl Actor for ExerciseFlow {
    type Context = Context<Self>;
}

impl Handler<PendingWrites> for ExerciseFlow {
    type Result = usize;

    fn handle(&mut self, _: PendingWrites, _: &mut Context<Self>) -> usize {
        let _timer = self.metrics.handling(ActorKind::ExerciseFlow);
        self.pending_writes
    }
}

impl Handler<HandleInteraction> for ExerciseFlow {
    type Result = ResponseActFuture<Self, Result<ChatMessage, FlowError>>;

    fn handle(&mut self, msg: HandleInteraction, _: &mut Context<Self>) -> Self::Result {
        let _timer = self.metrics.handling(ActorKind::ExerciseFlow);
        if let Some(exercise) = self.catalogue.get(&msg.button_id).cloned() {
            let reply = self.start(&msg, &exercise);
            return Box::pin(fut::ready(Ok(reply)));
        }
        let completed = msg
            .button_id
            .strip_suffix(COMPLETE_SUFFIX)
            .and_then(|id| self.catalogue.get(id))
            .cloned();
        if let Some(exercise) = completed {
            return self.complete(msg, exercise);
        }
        let reply = Self::reply(
            &msg,
            ExerciseEvent::Acknowledged,
            None,
            vec![Element::Ack {
                id: msg.button_id.clone(),
                label: "Received".into(),
            }],
        );
        Box::pin(fut::ready(Ok(reply)))
    }
}
