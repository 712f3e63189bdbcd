//! The state of one table's monitors, with time passed in: pure, so the
//! episode rules are tested without clocks.
//!
//! Times are when walguard read a committed transaction from the stream, not
//! the commit timestamps: the host clocks need not agree, and a backlog read
//! after a restart counts as fresh activity instead of raising alarms about
//! the past. The clock of both monitors starts when walguard begins watching
//! the table (at start, or at the reload that adds the monitor), so nothing is
//! raised before one full window has passed under observation.
//!
//! An episode is raised once, when it begins, under a key that names its
//! start; it is resolved once, when it ends. A freshness episode begins when a
//! window passes without an insert and ends at the next insert. A volume
//! episode begins with the first window of fixed length `per` that holds fewer
//! than `min` inserts and ends with the first window that holds enough.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::schema::{Monitors, QualifiedName};

/// The monitor kinds, which are also the violations' `rule`.
pub(crate) const FRESHNESS: &str = "freshness";
pub(crate) const VOLUME: &str = "volume";

/// A raised, not yet resolved episode.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Episode {
    /// The raise record's dedup key; the resolution's is this plus `/resolved`.
    pub(crate) key: String,
    /// Activity after this time ends a freshness episode.
    pub(crate) since: SystemTime,
}

/// What the monitors decided at one evaluation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Event {
    Raised { rule: &'static str, key: String, message: String },
    Resolved { rule: &'static str, raised_key: String, message: String },
}

/// One table's monitors.
#[derive(Debug)]
pub(crate) struct TableMonitor {
    table: QualifiedName,
    monitors: Monitors,
    watched_since: SystemTime,
    last_insert: Option<SystemTime>,
    freshness: Option<Episode>,
    window_start: SystemTime,
    window_count: u64,
    volume: Option<Episode>,
}

impl TableMonitor {
    pub(crate) fn new(table: QualifiedName, monitors: Monitors, now: SystemTime) -> Self {
        TableMonitor {
            table,
            monitors,
            watched_since: now,
            last_insert: None,
            freshness: None,
            window_start: now,
            window_count: 0,
            volume: None,
        }
    }

    /// Takes over an episode raised before a restart, so it is not raised
    /// again and is resolved when it ends.
    pub(crate) fn restore(&mut self, rule: &str, key: String) {
        let episode = Some(Episode { key, since: self.watched_since });
        match rule {
            FRESHNESS => self.freshness = episode,
            VOLUME => self.volume = episode,
            _ => {}
        }
    }

    /// Applies settings from a reload, keeping what was observed; a changed
    /// volume setting starts a new window at `now`.
    pub(crate) fn update(&mut self, monitors: Monitors, now: SystemTime) {
        if self.monitors.volume != monitors.volume {
            self.window_count = 0;
            self.window_start = now;
        }
        self.monitors = monitors;
    }

    /// Counts `count` inserts read at `at`.
    pub(crate) fn record(&mut self, at: SystemTime, count: u64, events: &mut Vec<Event>) {
        self.close_windows(at, events);
        self.window_count += count;
        self.last_insert = Some(self.last_insert.map_or(at, |last| last.max(at)));
    }

    /// Raises and resolves episodes as of `now`.
    pub(crate) fn evaluate(&mut self, now: SystemTime, events: &mut Vec<Event>) {
        self.check_freshness(now, events);
        self.close_windows(now, events);
    }

    fn check_freshness(&mut self, now: SystemTime, events: &mut Vec<Event>) {
        let Some(window) = self.monitors.freshness else {
            self.freshness = None;
            return;
        };
        if let Some(episode) = &self.freshness {
            if self.last_insert.is_some_and(|last| last > episode.since) {
                let message = format!("inserts into {} arrived again", self.table);
                events.push(Event::Resolved {
                    rule: FRESHNESS,
                    raised_key: episode.key.clone(),
                    message,
                });
                self.freshness = None;
            }
            return;
        }
        let reference =
            self.last_insert.map_or(self.watched_since, |last| last.max(self.watched_since));
        if now.duration_since(reference).unwrap_or_default() < window {
            return;
        }
        let key = format!("monitor/{FRESHNESS}/{}/{}", self.table, micros(reference));
        let since = match self.last_insert {
            Some(_) => "the last insert",
            None => "walguard started watching",
        };
        let message = format!(
            "no insert into {} for {} since {since} at {}",
            self.table,
            humantime::format_duration(window),
            humantime::format_rfc3339_seconds(reference)
        );
        events.push(Event::Raised { rule: FRESHNESS, key: key.clone(), message });
        self.freshness = Some(Episode { key, since: reference });
    }

    /// Judges every volume window that ended by `now`.
    fn close_windows(&mut self, now: SystemTime, events: &mut Vec<Event>) {
        let Some(volume) = self.monitors.volume else {
            self.volume = None;
            return;
        };
        while now.duration_since(self.window_start).unwrap_or_default() >= volume.per {
            let (start, count) = (self.window_start, self.window_count);
            match &self.volume {
                None if count < volume.min => {
                    let key = format!("monitor/{VOLUME}/{}/{}", self.table, micros(start));
                    let message = format!(
                        "{count} inserts into {} in the {} from {}, fewer than the {} expected",
                        self.table,
                        humantime::format_duration(volume.per),
                        humantime::format_rfc3339_seconds(start),
                        volume.min
                    );
                    events.push(Event::Raised { rule: VOLUME, key: key.clone(), message });
                    self.volume = Some(Episode { key, since: start });
                }
                Some(episode) if count >= volume.min => {
                    let message = format!(
                        "{count} inserts into {} in the {} from {}: back to the {} expected",
                        self.table,
                        humantime::format_duration(volume.per),
                        humantime::format_rfc3339_seconds(start),
                        volume.min
                    );
                    events.push(Event::Resolved {
                        rule: VOLUME,
                        raised_key: episode.key.clone(),
                        message,
                    });
                    self.volume = None;
                }
                _ => {}
            }
            self.window_start = start + volume.per;
            self.window_count = 0;
        }
    }
}

/// Microseconds since the Unix epoch, for keys.
fn micros(time: SystemTime) -> u128 {
    time.duration_since(UNIX_EPOCH).unwrap_or(Duration::ZERO).as_micros()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schema::Volume;

    const T0: Duration = Duration::from_secs(1_700_000_000);

    fn at(seconds: u64) -> SystemTime {
        UNIX_EPOCH + T0 + Duration::from_secs(seconds)
    }

    fn monitor(monitors: Monitors) -> TableMonitor {
        TableMonitor::new(QualifiedName::new("public", "orders"), monitors, at(0))
    }

    fn freshness(seconds: u64) -> Monitors {
        Monitors { freshness: Some(Duration::from_secs(seconds)), volume: None }
    }

    fn rules(events: &[Event]) -> Vec<String> {
        events
            .iter()
            .map(|event| match event {
                Event::Raised { rule, .. } => format!("raised {rule}"),
                Event::Resolved { rule, .. } => format!("resolved {rule}"),
            })
            .collect()
    }

    #[test]
    fn freshness_waits_a_full_window_after_start() {
        let mut monitor = monitor(freshness(60));
        let mut events = Vec::new();
        monitor.evaluate(at(59), &mut events);
        assert!(events.is_empty(), "nothing before a full window: {events:?}");
        monitor.evaluate(at(60), &mut events);
        assert_eq!(rules(&events), ["raised freshness"]);
    }

    #[test]
    fn freshness_is_raised_once_per_episode_and_resolved_once() {
        let mut monitor = monitor(freshness(60));
        let mut events = Vec::new();
        monitor.record(at(10), 1, &mut events);
        for second in 11..200 {
            monitor.evaluate(at(second), &mut events);
        }
        assert_eq!(rules(&events), ["raised freshness"]);
        let Event::Raised { key, message, .. } = events[0].clone() else { unreachable!() };
        assert!(key.ends_with(&format!("/{}", (T0.as_secs() + 10) * 1_000_000)), "{key}");
        assert!(message.contains("1m since the last insert"), "{message}");

        monitor.record(at(200), 3, &mut events);
        for second in 200..250 {
            monitor.evaluate(at(second), &mut events);
        }
        assert_eq!(rules(&events), ["raised freshness", "resolved freshness"]);
        let Event::Resolved { raised_key, .. } = &events[1] else { unreachable!() };
        assert_eq!(raised_key, &key);

        // A new episode gets a new key.
        monitor.evaluate(at(260), &mut events);
        let Event::Raised { key: second, .. } = &events[2] else { unreachable!() };
        assert_ne!(second, &key);
    }

    #[test]
    fn a_restored_episode_is_not_raised_again_and_resolves_at_the_next_insert() {
        let mut monitor = monitor(freshness(60));
        monitor.restore(FRESHNESS, "monitor/freshness/public.orders/1".into());
        let mut events = Vec::new();
        monitor.evaluate(at(120), &mut events);
        assert!(events.is_empty(), "{events:?}");
        monitor.record(at(121), 1, &mut events);
        monitor.evaluate(at(121), &mut events);
        assert_eq!(rules(&events), ["resolved freshness"]);
    }

    #[test]
    fn volume_raises_at_the_first_short_window_and_resolves_at_the_first_full_one() {
        let volume = Volume { min: 3, per: Duration::from_secs(10) };
        let mut monitor = monitor(Monitors { freshness: None, volume: Some(volume) });
        let mut events = Vec::new();
        monitor.record(at(1), 2, &mut events);
        monitor.evaluate(at(9), &mut events);
        assert!(events.is_empty());
        monitor.evaluate(at(35), &mut events);
        assert_eq!(rules(&events), ["raised volume"], "three short windows, one episode");
        let Event::Raised { message, .. } = &events[0] else { unreachable!() };
        assert!(message.starts_with("2 inserts into public.orders in the 10s"), "{message}");

        monitor.record(at(36), 3, &mut events);
        monitor.evaluate(at(39), &mut events);
        assert_eq!(events.len(), 1, "the window is not over yet");
        monitor.evaluate(at(40), &mut events);
        assert_eq!(rules(&events), ["raised volume", "resolved volume"]);
    }
}
