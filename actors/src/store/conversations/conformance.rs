//! One suite of behaviour that every conversation store runs: sessions,
//! ownership, idempotent sends, pagination, replies and their ends,
//! start-up recovery, and data that survives a reopen.

use std::collections::HashSet;

use super::*;

fn json(text: &str) -> Box<RawValue> {
    RawValue::from_string(text.to_string()).expect("valid JSON")
}

fn player(prefix: &str, name: &str) -> PlayerId {
    PlayerId::parse(&format!("{prefix}{name}")).expect("player id")
}

pub fn user_message(text: &str, client_message_id: Option<&str>) -> NewUserMessage {
    NewUserMessage {
        text: text.into(),
        client_message_id: client_message_id.map(str::to_string),
        safety: json(r#"{"crisis_detected":false}"#),
        character_id: None,
        world_id: None,
    }
}

fn end(status: FinalStatus, text: &str) -> ReplyEnd {
    ReplyEnd {
        status,
        text: text.into(),
        elements: json(r#"[{"type":"button","id":"ex_breathing_start"}]"#),
        safety: json(r#"{"crisis_detected":false,"risk":"low"}"#),
        usage: Some(json(r#"{"response_time_ms":12,"first_token_ms":3}"#)),
        fallback: status == FinalStatus::Complete,
        finish_reason: Some("stop".into()),
        completed_at: Timestamp::now(),
    }
}

/// Later than `at` by at least a millisecond, the resolution kept.
fn after(at: Timestamp) {
    while now() <= at {
        std::thread::sleep(std::time::Duration::from_millis(1));
    }
}

fn ids(messages: &[StoredMessage]) -> Vec<MessageId> {
    messages.iter().map(|message| message.id).collect()
}

/// `prefix` makes the players unique to this run, so stores shared with
/// other runs (a PostgreSQL database) do not mix results.
pub fn run(store: &dyn ConversationStore, prefix: &str) {
    sessions(store, prefix);
    ensuring(store, prefix);
    session_pages(store, prefix);
    user_messages(store, prefix);
    replies(store, prefix);
    message_pages(store, prefix);
    exchanges(store, prefix);
    recovery(store, prefix);
}

/// v1 chat recorded after the fact: the session is made on first use, the
/// reply keeps the id the client saw, and another player's session is not
/// written to.
fn exchanges(store: &dyn ConversationStore, prefix: &str) {
    let alice = player(prefix, "alice-v1");
    let bob = player(prefix, "bob-v1");
    let bobs = store
        .create_conversation(&bob, NewConversation::default())
        .unwrap();
    let mut asked = user_message("hello from v1", None);
    asked.character_id = Some("char-1".into());
    let first = Exchange {
        player: alice.clone(),
        // A v1 session id nobody has used: the client named it.
        session: SessionId::generate(),
        agent: None,
        user: asked,
        reply_id: MessageId::generate(),
        reply: end(FinalStatus::Complete, "Hello, I'm here."),
    };
    let second = Exchange {
        session: first.session.clone(),
        reply_id: MessageId::generate(),
        user: user_message("and again", None),
        ..first.clone()
    };
    let trespass = Exchange {
        session: bobs.id.clone(),
        reply_id: MessageId::generate(),
        ..first.clone()
    };
    let recorded = store
        .record_exchanges(&[first.clone(), trespass, second.clone()])
        .unwrap();
    assert_eq!(recorded, 2, "not in another player's session");
    let conversation = store
        .conversation(&alice, &first.session)
        .unwrap()
        .expect("made on first use");
    assert_eq!(conversation.message_count, 4);
    let messages = store.recent_messages(&alice, &first.session, 10).unwrap();
    assert_eq!(messages.len(), 4);
    assert_eq!(messages[0].text, "hello from v1");
    assert_eq!(messages[0].character_id.as_deref(), Some("char-1"));
    assert_eq!(messages[1].id, first.reply_id);
    assert_eq!(messages[1].reply_to, Some(messages[0].id));
    assert_eq!(messages[1].status, MessageStatus::Complete);
    assert_eq!(messages[1].text, "Hello, I'm here.");
    assert_eq!(messages[1].elements.get(), first.reply.elements.get());
    assert_eq!(messages[1].finish_reason.as_deref(), Some("stop"));
    assert!(messages[1].fallback);
    assert_eq!(messages[3].id, second.reply_id);
    assert_eq!(
        store
            .conversation(&bob, &bobs.id)
            .unwrap()
            .unwrap()
            .message_count,
        0
    );
    assert_eq!(store.record_exchanges(&[]).unwrap(), 0);
    assert_eq!(conversation.agent, DEFAULT_AGENT);
    // A client on an agent's path: the session it makes is that agent's.
    let sleepy = Exchange {
        session: SessionId::generate(),
        agent: Some("sleep".into()),
        reply_id: MessageId::generate(),
        ..first.clone()
    };
    assert_eq!(
        store
            .record_exchanges(std::slice::from_ref(&sleepy))
            .unwrap(),
        1
    );
    let made = store
        .conversation(&alice, &sleepy.session)
        .unwrap()
        .unwrap();
    assert_eq!(made.agent, "sleep");
}

fn sessions(store: &dyn ConversationStore, prefix: &str) {
    let alice = player(prefix, "alice");
    let bob = player(prefix, "bob");
    let plain = store
        .create_conversation(&alice, NewConversation::default())
        .unwrap();
    assert!(plain.id.as_str().starts_with("sess_"));
    assert_eq!(plain.id.as_str().len(), 5 + 32);
    assert_eq!(plain.player, alice);
    assert_eq!(plain.agent, DEFAULT_AGENT);
    assert_eq!(
        (plain.title.as_deref(), plain.pillar.as_deref()),
        (None, None)
    );
    assert_eq!(plain.created_at, plain.updated_at);
    assert!(!plain.archived);
    assert_eq!(plain.message_count, 0);
    let named = store
        .create_conversation(
            &alice,
            NewConversation {
                title: Some("Evening wind-down".into()),
                agent: Some("sleep".into()),
                pillar: Some("sleep".into()),
            },
        )
        .unwrap();
    assert_ne!(named.id, plain.id);
    assert_eq!(named.title.as_deref(), Some("Evening wind-down"));
    assert_eq!(named.agent, "sleep");
    assert_eq!(named.pillar.as_deref(), Some("sleep"));
    assert_eq!(
        store.conversation(&alice, &named.id).unwrap(),
        Some(named.clone())
    );

    // Another player's session is as unknown as one never made.
    assert_eq!(store.conversation(&bob, &named.id).unwrap(), None);
    assert_eq!(
        store.conversation(&alice, &SessionId::generate()).unwrap(),
        None
    );
    assert_eq!(store.archive_conversation(&bob, &named.id).unwrap(), None);
    assert!(
        !store
            .conversation(&alice, &named.id)
            .unwrap()
            .unwrap()
            .archived
    );

    // Archiving is idempotent and hides the session from the default
    // listing only.
    let archived = store
        .archive_conversation(&alice, &named.id)
        .unwrap()
        .unwrap();
    assert!(archived.archived);
    assert_eq!(archived.updated_at, named.updated_at);
    let again = store
        .archive_conversation(&alice, &named.id)
        .unwrap()
        .unwrap();
    assert_eq!(again, archived);
    let listed = store
        .conversations(&alice, &ConversationQuery::default())
        .unwrap();
    assert_eq!(listed.items, vec![plain.clone()]);
    assert!(listed.next.is_none());
    let all = store
        .conversations(
            &alice,
            &ConversationQuery {
                include_archived: true,
                ..ConversationQuery::default()
            },
        )
        .unwrap();
    assert_eq!(all.items, vec![archived, plain], "newest first");
    let none = store
        .conversations(&bob, &ConversationQuery::default())
        .unwrap();
    assert!(none.items.is_empty() && none.next.is_none());
    assert_eq!(
        store
            .archive_conversation(&alice, &SessionId::generate())
            .unwrap(),
        None
    );
}

/// For a store opened with a bound of two sessions per player: a third is
/// refused when asked for, and not made when a v1 client names a new id.
pub fn session_cap(store: &dyn ConversationStore, prefix: &str) {
    let alice = player(prefix, "cap-alice");
    let blank = || NewConversation {
        title: None,
        agent: None,
        pillar: None,
    };
    let first = store.create_conversation(&alice, blank()).unwrap();
    let v1 = SessionId::parse(&format!("{prefix}cap-v1")).unwrap();
    assert!(store.ensure_conversation(&alice, &v1).unwrap().is_some());
    assert!(matches!(
        store.create_conversation(&alice, blank()),
        Err(ConversationError::TooMany)
    ));
    let another = SessionId::parse(&format!("{prefix}cap-v1-another")).unwrap();
    assert_eq!(store.ensure_conversation(&alice, &another).unwrap(), None);
    // Those already there are found as before; other players are not held.
    assert!(store.ensure_conversation(&alice, &v1).unwrap().is_some());
    assert!(store.conversation(&alice, &first.id).unwrap().is_some());
    let bob = player(prefix, "cap-bob");
    assert!(store.create_conversation(&bob, blank()).is_ok());
}

fn ensuring(store: &dyn ConversationStore, prefix: &str) {
    let alice = player(prefix, "ensure-alice");
    let bob = player(prefix, "ensure-bob");
    // A v1 client may name its session anything valid; ids are shared
    // by all players, so the run's prefix keeps this one to the run.
    let v1 = SessionId::parse(&format!("{prefix}my-session")).unwrap();
    let made = store.ensure_conversation(&alice, &v1).unwrap().unwrap();
    assert_eq!(made.id, v1);
    assert_eq!(made.player, alice);
    assert_eq!(made.agent, DEFAULT_AGENT);
    assert_eq!(made.message_count, 0);
    let again = store.ensure_conversation(&alice, &v1).unwrap().unwrap();
    assert_eq!(again, made, "the first use made it; later ones find it");
    let page = store
        .conversations(&alice, &ConversationQuery::default())
        .unwrap();
    assert_eq!(page.items, vec![made.clone()]);

    // Bob cannot take it over, nor read or write it.
    assert_eq!(store.ensure_conversation(&bob, &v1).unwrap(), None);
    assert_eq!(store.conversation(&bob, &v1).unwrap(), None);
    assert!(matches!(
        store.append_user_message(&bob, &v1, user_message("mine now", None)),
        Err(ConversationError::NotFound)
    ));
    assert!(store
        .conversations(&bob, &ConversationQuery::default())
        .unwrap()
        .items
        .is_empty());
    assert_eq!(store.conversation(&alice, &v1).unwrap(), Some(made));

    // A generated id is ensured the same way.
    let generated = SessionId::generate();
    let made = store
        .ensure_conversation(&bob, &generated)
        .unwrap()
        .unwrap();
    assert_eq!(made.player, bob);
}

fn session_pages(store: &dyn ConversationStore, prefix: &str) {
    let carol = player(prefix, "carol");
    let mut made = Vec::new();
    for n in 0..7 {
        let conversation = store
            .create_conversation(
                &carol,
                NewConversation {
                    title: Some(format!("s{n}")),
                    ..NewConversation::default()
                },
            )
            .unwrap();
        made.push(conversation.id);
    }
    store
        .archive_conversation(&carol, &made[3])
        .unwrap()
        .unwrap();
    let newest_first: Vec<SessionId> = made.iter().rev().cloned().collect();

    // Pages of two; a session created between pages goes to the front
    // and moves nothing.
    let mut seen = Vec::new();
    let mut before = None;
    let mut pages = 0;
    loop {
        let page = store
            .conversations(
                &carol,
                &ConversationQuery {
                    include_archived: true,
                    limit: 2,
                    before: before.take(),
                },
            )
            .unwrap();
        assert!(page.items.len() <= 2);
        seen.extend(page.items.into_iter().map(|c| c.id));
        pages += 1;
        if pages == 1 {
            store
                .create_conversation(&carol, NewConversation::default())
                .unwrap();
        }
        match page.next {
            Some(next) => before = Some(next),
            None => break,
        }
    }
    assert_eq!(seen, newest_first, "no session lost or repeated");
    assert_eq!(pages, 4);

    // Without archived ones.
    let mut seen = Vec::new();
    let mut before = None;
    loop {
        let page = store
            .conversations(
                &carol,
                &ConversationQuery {
                    include_archived: false,
                    limit: 3,
                    before: before.take(),
                },
            )
            .unwrap();
        seen.extend(page.items.into_iter().map(|c| c.id));
        match page.next {
            Some(next) => before = Some(next),
            None => break,
        }
    }
    assert_eq!(seen.len(), 7, "the eighth session, less the archived one");
    assert!(!seen.contains(&made[3]));
    assert_eq!(seen.iter().collect::<HashSet<_>>().len(), 7);

    // The page size is capped, and never zero.
    let dave = player(prefix, "dave");
    for _ in 0..MAX_PAGE + 1 {
        store
            .create_conversation(&dave, NewConversation::default())
            .unwrap();
    }
    let capped = store
        .conversations(
            &dave,
            &ConversationQuery {
                limit: 1000,
                ..ConversationQuery::default()
            },
        )
        .unwrap();
    assert_eq!(capped.items.len(), MAX_PAGE);
    let rest = store
        .conversations(
            &dave,
            &ConversationQuery {
                limit: 1000,
                before: capped.next,
                ..ConversationQuery::default()
            },
        )
        .unwrap();
    assert_eq!(rest.items.len(), 1);
    assert!(rest.next.is_none());
    let one = store
        .conversations(
            &dave,
            &ConversationQuery {
                limit: 0,
                ..ConversationQuery::default()
            },
        )
        .unwrap();
    assert_eq!(one.items.len(), 1);
    assert!(one.next.is_some());

    for bad in [
        "",
        "x",
        "c",
        "c-1",
        "c0",
        "c 1",
        "c1x",
        "m1",
        "c99999999999999999999",
    ] {
        let result = store.conversations(
            &carol,
            &ConversationQuery {
                before: Some(bad.into()),
                ..ConversationQuery::default()
            },
        );
        assert!(
            matches!(result, Err(ConversationError::BadCursor)),
            "{bad:?}: {result:?}"
        );
    }
}

fn user_messages(store: &dyn ConversationStore, prefix: &str) {
    let alice = player(prefix, "msg-alice");
    let bob = player(prefix, "msg-bob");
    let session = store
        .create_conversation(&alice, NewConversation::default())
        .unwrap();
    let other = store
        .create_conversation(&alice, NewConversation::default())
        .unwrap();
    after(session.updated_at);
    let appended = store
        .append_user_message(
            &alice,
            &session.id,
            NewUserMessage {
                character_id: Some("char_7".into()),
                world_id: Some("world_2".into()),
                ..user_message("I can't sleep", Some("c-1"))
            },
        )
        .unwrap();
    assert!(!appended.repeated);
    let first = appended.message;
    assert!(first.id.to_string().starts_with("msg_"));
    assert_eq!(first.session_id, session.id);
    assert_eq!(first.role, Role::User);
    assert_eq!(first.text, "I can't sleep");
    assert_eq!(first.status, MessageStatus::Complete);
    assert_eq!(first.completed_at, Some(first.created_at));
    assert_eq!(first.elements.get(), "[]");
    assert_eq!(first.safety.get(), r#"{"crisis_detected":false}"#);
    assert!(first.usage.is_none());
    assert!(!first.fallback);
    assert_eq!(first.finish_reason, None);
    assert_eq!(first.client_message_id.as_deref(), Some("c-1"));
    assert_eq!(first.reply_to, None);
    assert_eq!(first.character_id.as_deref(), Some("char_7"));
    assert_eq!(first.world_id.as_deref(), Some("world_2"));

    let bumped = store.conversation(&alice, &session.id).unwrap().unwrap();
    assert_eq!(bumped.message_count, 1);
    assert!(bumped.updated_at > session.updated_at, "a message moves it");
    assert_eq!(bumped.updated_at, first.created_at);
    assert_eq!(bumped.created_at, session.created_at);

    // A repeat answers the first message and adds nothing, whatever its
    // text.
    let repeat = store
        .append_user_message(&alice, &session.id, user_message("again?", Some("c-1")))
        .unwrap();
    assert!(repeat.repeated);
    assert_eq!(repeat.message.id, first.id);
    assert_eq!(repeat.message.text, "I can't sleep");
    assert_eq!(
        store
            .conversation(&alice, &session.id)
            .unwrap()
            .unwrap()
            .message_count,
        1
    );
    // The key is unique per session, not across them.
    let elsewhere = store
        .append_user_message(&alice, &other.id, user_message("hello", Some("c-1")))
        .unwrap();
    assert!(!elsewhere.repeated);
    assert_ne!(elsewhere.message.id, first.id);
    // Without a key every message is new.
    let a = store
        .append_user_message(&alice, &session.id, user_message("one", None))
        .unwrap();
    let b = store
        .append_user_message(&alice, &session.id, user_message("one", None))
        .unwrap();
    assert!(!a.repeated && !b.repeated);
    assert_ne!(a.message.id, b.message.id);
    assert_eq!(
        store
            .conversation(&alice, &session.id)
            .unwrap()
            .unwrap()
            .message_count,
        3
    );

    // Reading one message is scoped to the player and the session.
    let read = store
        .message(&alice, &session.id, &first.id)
        .unwrap()
        .unwrap();
    assert_eq!(read.text, first.text);
    assert_eq!(read.created_at, first.created_at);
    assert_eq!(read.character_id.as_deref(), Some("char_7"));
    assert!(store
        .message(&bob, &session.id, &first.id)
        .unwrap()
        .is_none());
    assert!(store
        .message(&alice, &other.id, &first.id)
        .unwrap()
        .is_none());
    assert!(store
        .message(&alice, &session.id, &MessageId::generate())
        .unwrap()
        .is_none());

    // Bob cannot write to, list or read from Alice's session, and is told
    // nothing about it that an unknown session would not tell.
    for session in [&session.id, &SessionId::generate()] {
        assert!(matches!(
            store.append_user_message(&bob, session, user_message("hi", Some("c-1"))),
            Err(ConversationError::NotFound)
        ));
        assert!(matches!(
            store.messages(&bob, session, &MessageQuery::default()),
            Err(ConversationError::NotFound)
        ));
        assert!(matches!(
            store.recent_messages(&bob, session, 10),
            Err(ConversationError::NotFound)
        ));
    }
    assert_eq!(
        store
            .conversation(&alice, &session.id)
            .unwrap()
            .unwrap()
            .message_count,
        3
    );
}

fn replies(store: &dyn ConversationStore, prefix: &str) {
    let alice = player(prefix, "reply-alice");
    let bob = player(prefix, "reply-bob");
    let session = store
        .create_conversation(&alice, NewConversation::default())
        .unwrap();
    let other = store
        .create_conversation(&alice, NewConversation::default())
        .unwrap();
    let asked = store
        .append_user_message(&alice, &session.id, user_message("breathing?", None))
        .unwrap()
        .message;

    let reply = store.start_reply(&alice, &session.id, &asked.id).unwrap();
    assert_eq!(reply.role, Role::Assistant);
    assert_eq!(reply.status, MessageStatus::Streaming);
    assert_eq!(reply.text, "");
    assert_eq!(reply.reply_to, Some(asked.id));
    assert_eq!(reply.completed_at, None);
    assert_eq!(reply.elements.get(), "[]");
    assert_eq!(reply.safety.get(), "null");
    assert!(reply.usage.is_none() && !reply.fallback && reply.finish_reason.is_none());
    assert_eq!(reply.client_message_id, None);
    let found = store
        .latest_reply_to(&alice, &session.id, &asked.id)
        .unwrap()
        .map(|found| found.id);
    assert_eq!(found, Some(reply.id), "a repeated send finds its reply");
    assert!(store
        .latest_reply_to(&bob, &session.id, &asked.id)
        .is_err_and(|err| matches!(err, ConversationError::NotFound)));
    assert_eq!(
        store
            .conversation(&alice, &session.id)
            .unwrap()
            .unwrap()
            .message_count,
        2
    );

    // A reply answers a user message of the same session, of this player.
    for (who, in_session, answering) in [
        (&bob, &session.id, asked.id),
        (&alice, &other.id, asked.id),
        (&alice, &session.id, reply.id),
        (&alice, &session.id, MessageId::generate()),
    ] {
        assert!(matches!(
            store.start_reply(who, in_session, &answering),
            Err(ConversationError::NotFound)
        ));
    }

    // The partial text is kept, and only the owner may set it.
    store
        .save_partial(&alice, &session.id, &reply.id, "Let's try")
        .unwrap();
    store
        .save_partial(&alice, &session.id, &reply.id, "Let's try a slow breath")
        .unwrap();
    assert!(matches!(
        store.save_partial(&bob, &session.id, &reply.id, "hijack"),
        Err(ConversationError::NotFound)
    ));
    assert!(matches!(
        store.save_partial(&alice, &session.id, &asked.id, "not a reply"),
        Err(ConversationError::NotFound)
    ));
    let partial = store
        .message(&alice, &session.id, &reply.id)
        .unwrap()
        .unwrap();
    assert_eq!(partial.text, "Let's try a slow breath");
    assert_eq!(partial.status, MessageStatus::Streaming);

    // Bob cannot finish it; Alice can, once.
    assert!(matches!(
        store.finish_reply(
            &bob,
            &session.id,
            &reply.id,
            end(FinalStatus::Complete, "x")
        ),
        Err(ConversationError::NotFound)
    ));
    let ending = end(FinalStatus::Complete, "Let's try a slow breath together.");
    let done = store
        .finish_reply(&alice, &session.id, &reply.id, ending.clone())
        .unwrap();
    assert_eq!(done.id, reply.id);
    assert_eq!(done.status, MessageStatus::Complete);
    assert_eq!(done.text, ending.text);
    assert_eq!(done.elements.get(), ending.elements.get());
    assert_eq!(done.safety.get(), ending.safety.get());
    assert_eq!(
        done.usage.as_deref().map(RawValue::get),
        ending.usage.as_deref().map(RawValue::get)
    );
    assert!(done.fallback);
    assert_eq!(done.finish_reason.as_deref(), Some("stop"));
    assert_eq!(done.completed_at, Some(stamp(ending.completed_at)));
    assert_eq!(done.reply_to, Some(asked.id));
    assert_eq!(done.created_at, reply.created_at);
    let read = store
        .message(&alice, &session.id, &reply.id)
        .unwrap()
        .unwrap();
    assert_eq!(read.text, done.text);
    assert_eq!(read.status, MessageStatus::Complete);
    assert_eq!(read.completed_at, done.completed_at);
    assert_eq!(
        read.usage.as_deref().map(RawValue::get),
        done.usage.as_deref().map(RawValue::get)
    );

    // An ended reply is neither ended again nor written to.
    for status in [
        FinalStatus::Complete,
        FinalStatus::Cancelled,
        FinalStatus::Failed,
    ] {
        assert!(matches!(
            store.finish_reply(&alice, &session.id, &reply.id, end(status, "late")),
            Err(ConversationError::NotStreaming {
                status: MessageStatus::Complete
            })
        ));
    }
    assert!(matches!(
        store.save_partial(&alice, &session.id, &reply.id, "late"),
        Err(ConversationError::NotStreaming {
            status: MessageStatus::Complete
        })
    ));
    assert!(matches!(
        store.finish_reply(
            &alice,
            &session.id,
            &asked.id,
            end(FinalStatus::Complete, "x")
        ),
        Err(ConversationError::NotFound)
    ));
    let unchanged = store
        .message(&alice, &session.id, &reply.id)
        .unwrap()
        .unwrap();
    assert_eq!(unchanged.text, done.text);

    // Cancelled and failed ends; a retry is a second reply to the same
    // message.
    let cancelled = store.start_reply(&alice, &session.id, &asked.id).unwrap();
    store
        .save_partial(&alice, &session.id, &cancelled.id, "Let")
        .unwrap();
    let mut cancel = end(FinalStatus::Cancelled, "Let");
    cancel.usage = None;
    cancel.finish_reason = None;
    let cancelled = store
        .finish_reply(&alice, &session.id, &cancelled.id, cancel)
        .unwrap();
    assert_eq!(cancelled.status, MessageStatus::Cancelled);
    assert_eq!(cancelled.text, "Let");
    assert!(cancelled.usage.is_none() && cancelled.finish_reason.is_none());
    assert!(!cancelled.fallback);
    assert!(matches!(
        store.finish_reply(
            &alice,
            &session.id,
            &cancelled.id,
            end(FinalStatus::Failed, "")
        ),
        Err(ConversationError::NotStreaming {
            status: MessageStatus::Cancelled
        })
    ));
    let failed = store.start_reply(&alice, &session.id, &asked.id).unwrap();
    let failed = store
        .finish_reply(
            &alice,
            &session.id,
            &failed.id,
            end(FinalStatus::Failed, "Le"),
        )
        .unwrap();
    assert_eq!(failed.status, MessageStatus::Failed);
    assert_eq!(failed.reply_to, Some(asked.id));

    let conversation = store.conversation(&alice, &session.id).unwrap().unwrap();
    assert_eq!(conversation.message_count, 4);
    assert_eq!(
        ids(&store.recent_messages(&alice, &session.id, 10).unwrap()),
        vec![asked.id, reply.id, cancelled.id, failed.id]
    );
}

fn message_pages(store: &dyn ConversationStore, prefix: &str) {
    let alice = player(prefix, "page-alice");
    let session = store
        .create_conversation(&alice, NewConversation::default())
        .unwrap();
    let mut made = Vec::new();
    for n in 0..9 {
        let message = store
            .append_user_message(&alice, &session.id, user_message(&format!("m{n}"), None))
            .unwrap()
            .message;
        made.push(message.id);
    }

    // The latest page first, each page oldest first, going back; a
    // message added between pages moves nothing.
    let mut pages: Vec<Vec<MessageId>> = Vec::new();
    let mut before = None;
    loop {
        let page = store
            .messages(
                &alice,
                &session.id,
                &MessageQuery {
                    limit: 4,
                    before: before.take(),
                },
            )
            .unwrap();
        pages.push(ids(&page.items));
        if pages.len() == 1 {
            store
                .append_user_message(&alice, &session.id, user_message("late", None))
                .unwrap();
        }
        match page.next {
            Some(next) => before = Some(next),
            None => break,
        }
    }
    assert_eq!(
        pages,
        vec![made[5..9].to_vec(), made[1..5].to_vec(), made[..1].to_vec()]
    );
    let everything = store
        .messages(
            &alice,
            &session.id,
            &MessageQuery {
                limit: 100,
                before: None,
            },
        )
        .unwrap();
    assert_eq!(everything.items.len(), 10);
    assert!(everything.next.is_none());
    assert_eq!(ids(&everything.items[..9]), made);
    assert_eq!(everything.items[9].text, "late");

    // The most recent N, in order; more than there are is all of them.
    let recent = store.recent_messages(&alice, &session.id, 3).unwrap();
    assert_eq!(ids(&recent[..2]), made[7..9].to_vec());
    assert_eq!(recent[2].text, "late");
    assert_eq!(
        store
            .recent_messages(&alice, &session.id, 500)
            .unwrap()
            .len(),
        10
    );
    assert!(store
        .recent_messages(&alice, &session.id, 0)
        .unwrap()
        .is_empty());
    let empty = store
        .create_conversation(&alice, NewConversation::default())
        .unwrap();
    let none = store
        .messages(&alice, &empty.id, &MessageQuery::default())
        .unwrap();
    assert!(none.items.is_empty() && none.next.is_none());

    // A cursor of the other listing, or none of ours, is refused.
    let session_cursor = cursor(CursorKind::Conversations, 5);
    for bad in [session_cursor.as_str(), "", "m", "m0", "m-3", "zzz"] {
        assert!(
            matches!(
                store.messages(
                    &alice,
                    &session.id,
                    &MessageQuery {
                        limit: 4,
                        before: Some(bad.into()),
                    },
                ),
                Err(ConversationError::BadCursor)
            ),
            "{bad:?}"
        );
    }
}

fn recovery(store: &dyn ConversationStore, prefix: &str) {
    let alice = player(prefix, "recover-alice");
    let session = store
        .create_conversation(&alice, NewConversation::default())
        .unwrap();
    let asked = store
        .append_user_message(&alice, &session.id, user_message("hi", None))
        .unwrap()
        .message;
    let cut = store.start_reply(&alice, &session.id, &asked.id).unwrap();
    store
        .save_partial(&alice, &session.id, &cut.id, "Hello th")
        .unwrap();
    let untouched = store.start_reply(&alice, &session.id, &asked.id).unwrap();
    store
        .finish_reply(
            &alice,
            &session.id,
            &untouched.id,
            end(FinalStatus::Complete, "Hi."),
        )
        .unwrap();

    // A store shared with other runs may hold their streaming replies
    // too, so only a lower bound is certain.
    assert!(store.fail_interrupted_replies().unwrap() >= 1);
    let failed = store
        .message(&alice, &session.id, &cut.id)
        .unwrap()
        .unwrap();
    assert_eq!(failed.status, MessageStatus::Failed);
    assert_eq!(failed.text, "Hello th", "the text so far is kept");
    assert_eq!(failed.finish_reason.as_deref(), Some(INTERRUPTED));
    assert!(failed.completed_at.is_some());
    let kept = store
        .message(&alice, &session.id, &untouched.id)
        .unwrap()
        .unwrap();
    assert_eq!(kept.status, MessageStatus::Complete);
    assert_eq!(kept.finish_reason.as_deref(), Some("stop"));
    assert!(matches!(
        store.finish_reply(
            &alice,
            &session.id,
            &cut.id,
            end(FinalStatus::Complete, "x")
        ),
        Err(ConversationError::NotStreaming {
            status: MessageStatus::Failed
        })
    ));
}

/// What `before_reopen` wrote, for `after_reopen` to find.
pub struct Written {
    player: PlayerId,
    session: Conversation,
    asked: StoredMessage,
    done: StoredMessage,
    streaming: StoredMessage,
}

/// The first half of the reopen check: writes a session with a finished
/// and a streaming reply through one store.
pub fn before_reopen(store: &dyn ConversationStore, prefix: &str) -> Written {
    let player = player(prefix, "reopen");
    let created = store
        .create_conversation(
            &player,
            NewConversation {
                title: Some("kept".into()),
                agent: None,
                pillar: Some("mood".into()),
            },
        )
        .unwrap();
    let asked = store
        .append_user_message(&player, &created.id, user_message("remember me", Some("k")))
        .unwrap()
        .message;
    let reply = store.start_reply(&player, &created.id, &asked.id).unwrap();
    let done = store
        .finish_reply(
            &player,
            &created.id,
            &reply.id,
            end(FinalStatus::Complete, "I will."),
        )
        .unwrap();
    let streaming = store.start_reply(&player, &created.id, &asked.id).unwrap();
    store
        .save_partial(&player, &created.id, &streaming.id, "Still ")
        .unwrap();
    let session = store.conversation(&player, &created.id).unwrap().unwrap();
    Written {
        player,
        session,
        asked,
        done,
        streaming,
    }
}

/// The second half, through a store opened afresh on the same data:
/// everything is there, the key still deduplicates, and recovery fails
/// the reply the "restart" cut off.
pub fn after_reopen(store: &dyn ConversationStore, written: &Written) {
    let Written {
        player,
        session,
        asked,
        done,
        streaming,
    } = written;
    assert_eq!(
        store.conversation(player, &session.id).unwrap().as_ref(),
        Some(session)
    );
    let messages = store.recent_messages(player, &session.id, 10).unwrap();
    assert_eq!(ids(&messages), vec![asked.id, done.id, streaming.id]);
    let read = &messages[1];
    assert_eq!(read.text, done.text);
    assert_eq!(read.status, MessageStatus::Complete);
    assert_eq!(read.created_at, done.created_at);
    assert_eq!(read.completed_at, done.completed_at);
    assert_eq!(read.elements.get(), done.elements.get());
    assert_eq!(read.safety.get(), done.safety.get());
    assert_eq!(read.reply_to, Some(asked.id));
    assert_eq!(messages[0].safety.get(), asked.safety.get());
    assert_eq!(messages[2].text, "Still ");
    assert_eq!(messages[2].status, MessageStatus::Streaming);

    let repeat = store
        .append_user_message(player, &session.id, user_message("remember me", Some("k")))
        .unwrap();
    assert!(repeat.repeated);
    assert_eq!(repeat.message.id, asked.id);

    assert!(store.fail_interrupted_replies().unwrap() >= 1);
    let cut = store
        .message(player, &session.id, &streaming.id)
        .unwrap()
        .unwrap();
    assert_eq!(cut.status, MessageStatus::Failed);
    assert_eq!(cut.text, "Still ");
}
