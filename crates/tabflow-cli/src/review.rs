//! The review list of a destructive step: every item the step changes, one row each (name,
//! project, owner, last view, size), all ticked to start with; typing filters, space toggles
//! the row under the cursor, → ticks every row shown, ← unticks every row shown, ↑↓ PgUp PgDn
//! Home End move, Enter accepts, Esc goes back. The first line always shows the running count
//! ("21 of 23 selected").
//!
//! [`List`] is the list as data: keys in, lines out ([`List::handle`], [`List::render`]), with
//! no terminal, so every key is tested without one. [`run`] draws it on standard error in raw
//! mode (crossterm) and feeds it the keys pressed. Rows are cleaned (`term::clean`) before
//! they get here: nothing from the site reaches the terminal as an escape sequence.

use std::collections::BTreeSet;
use std::io::Write;

/// A key, as the list understands it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Key {
    Char(char),
    Backspace,
    Up,
    Down,
    PageUp,
    PageDown,
    Home,
    End,
    /// Ticks every row shown.
    Right,
    /// Unticks every row shown.
    Left,
    Enter,
    Esc,
    /// Ctrl-C: leave without an answer.
    Interrupt,
}

/// What a key did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    Continue,
    Accept,
    Back,
    Quit,
}

/// The review list.
pub struct List {
    rows: Vec<String>,
    folded: Vec<String>,
    ticked: BTreeSet<usize>,
    filter: String,
    /// The rows the filter lets through, in order.
    shown: Vec<usize>,
    /// Position in `shown`.
    cursor: usize,
    /// First position of `shown` on the page.
    top: usize,
    page: usize,
}

impl List {
    /// `rows` (already cleaned and fitted), those of `ticked` ticked; `page` rows at once.
    pub fn new(rows: Vec<String>, ticked: impl IntoIterator<Item = usize>, page: usize) -> List {
        let folded = rows.iter().map(|r| r.to_lowercase()).collect();
        let n = rows.len();
        List {
            rows,
            folded,
            ticked: ticked.into_iter().filter(|i| *i < n).collect(),
            filter: String::new(),
            shown: (0..n).collect(),
            cursor: 0,
            top: 0,
            page: page.max(1),
        }
    }

    /// The ticked rows, in order.
    pub fn ticked(&self) -> Vec<usize> {
        self.ticked.iter().copied().collect()
    }

    /// "12 of 23 selected".
    pub fn count(&self) -> String {
        format!("{} of {} selected", self.ticked.len(), self.rows.len())
    }

    fn refilter(&mut self) {
        let words: Vec<String> = self.filter.to_lowercase().split_whitespace().map(str::to_string).collect();
        self.shown =
            (0..self.rows.len()).filter(|i| words.iter().all(|w| self.folded[*i].contains(w.as_str()))).collect();
        self.cursor = 0;
        self.top = 0;
    }

    fn move_to(&mut self, pos: usize) {
        self.cursor = pos.min(self.shown.len().saturating_sub(1));
        if self.cursor < self.top {
            self.top = self.cursor;
        } else if self.cursor >= self.top + self.page {
            self.top = self.cursor + 1 - self.page;
        }
    }

    /// Takes one key.
    pub fn handle(&mut self, key: Key) -> Step {
        match key {
            Key::Char(' ') => {
                if let Some(&row) = self.shown.get(self.cursor)
                    && !self.ticked.remove(&row)
                {
                    self.ticked.insert(row);
                }
            }
            Key::Char(c) if !c.is_control() => {
                self.filter.push(c);
                self.refilter();
            }
            Key::Char(_) => {}
            Key::Backspace => {
                if self.filter.pop().is_some() {
                    self.refilter();
                }
            }
            Key::Up => self.move_to(self.cursor.saturating_sub(1)),
            Key::Down => self.move_to(self.cursor + 1),
            Key::PageUp => self.move_to(self.cursor.saturating_sub(self.page)),
            Key::PageDown => self.move_to(self.cursor + self.page),
            Key::Home => self.move_to(0),
            Key::End => self.move_to(usize::MAX),
            Key::Right => self.ticked.extend(self.shown.iter().copied()),
            Key::Left => {
                for r in &self.shown {
                    self.ticked.remove(r);
                }
            }
            Key::Enter => return Step::Accept,
            Key::Esc => return Step::Back,
            Key::Interrupt => return Step::Quit,
        }
        Step::Continue
    }

    /// The list's lines at `width` columns: the message with the running count and the
    /// filter, the page of rows (cursor `>`, box `[x]`), where the page is, and the keys.
    pub fn render(&self, message: &str, header: &str, width: usize) -> Vec<String> {
        let fit = |s: &str| crate::ui::fit(s, width);
        let filter = if self.filter.is_empty() {
            "type to filter".to_string()
        } else {
            format!("filter: {}▏ ({} shown)", self.filter, self.shown.len())
        };
        let mut out = vec![fit(&format!("? {message} · {} · {filter}", self.count())), fit(header)];
        let end = (self.top + self.page).min(self.shown.len());
        for pos in self.top..end {
            let row = self.shown[pos];
            let cursor = if pos == self.cursor { ">" } else { " " };
            let tick = if self.ticked.contains(&row) { "[x]" } else { "[ ]" };
            out.push(fit(&format!("{cursor} {tick} {}", self.rows[row])));
        }
        if self.shown.is_empty() {
            out.push(fit("  (no item matches the filter; Backspace widens it)"));
        }
        out.push(fit(&format!(
            "  rows {}–{} of {} shown",
            if self.shown.is_empty() { 0 } else { self.top + 1 },
            end,
            self.shown.len()
        )));
        out.push(fit(
            "  type to filter · space toggles · → ticks all shown · ← unticks all shown · ↑↓ PgUp PgDn move · Enter accepts · Esc goes back",
        ));
        out
    }
}

fn key_of(e: crossterm::event::KeyEvent) -> Option<Key> {
    use crossterm::event::{KeyCode, KeyEventKind, KeyModifiers};
    if e.kind == KeyEventKind::Release {
        return None;
    }
    if e.modifiers.contains(KeyModifiers::CONTROL) {
        return matches!(e.code, KeyCode::Char('c') | KeyCode::Char('d')).then_some(Key::Interrupt);
    }
    Some(match e.code {
        KeyCode::Char(c) => Key::Char(c),
        KeyCode::Backspace => Key::Backspace,
        KeyCode::Up => Key::Up,
        KeyCode::Down => Key::Down,
        KeyCode::PageUp => Key::PageUp,
        KeyCode::PageDown => Key::PageDown,
        KeyCode::Home => Key::Home,
        KeyCode::End => Key::End,
        KeyCode::Right => Key::Right,
        KeyCode::Left => Key::Left,
        KeyCode::Enter => Key::Enter,
        KeyCode::Esc => Key::Esc,
        _ => return None,
    })
}

/// Raw mode for as long as it lives (restored however the list ends).
struct Raw;

impl Raw {
    fn on() -> std::io::Result<Raw> {
        crossterm::terminal::enable_raw_mode()?;
        Ok(Raw)
    }
}

impl Drop for Raw {
    fn drop(&mut self) {
        let _ = crossterm::terminal::disable_raw_mode();
    }
}

/// Shows `list` on standard error until Enter, Esc or Ctrl-C; redrawn in place after every
/// key. The terminal is left as it was, with one line saying what was chosen.
pub fn run(list: &mut List, message: &str, header: &str) -> std::io::Result<Step> {
    use crossterm::{cursor, queue, terminal};
    let _raw = Raw::on()?;
    let mut err = std::io::stderr();
    let mut drawn = 0u16;
    let step = loop {
        let width = crate::ui::width_err();
        let lines = list.render(message, header, width);
        if drawn > 0 {
            queue!(err, cursor::MoveUp(drawn))?;
        }
        queue!(err, cursor::MoveToColumn(0), terminal::Clear(terminal::ClearType::FromCursorDown))?;
        err.write_all(lines.join("\r\n").as_bytes())?;
        err.write_all(b"\r\n")?;
        err.flush()?;
        drawn = lines.len() as u16;
        let key = match crossterm::event::read()? {
            crossterm::event::Event::Key(k) => key_of(k),
            _ => None,
        };
        let Some(key) = key else { continue };
        match list.handle(key) {
            Step::Continue => {}
            other => break other,
        }
    };
    queue!(err, cursor::MoveUp(drawn), cursor::MoveToColumn(0), terminal::Clear(terminal::ClearType::FromCursorDown))?;
    err.flush()?;
    Ok(step)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn list(n: usize) -> List {
        let rows = (0..n).map(|i| format!("Workbook {i:03} Finance owner{}", i % 7)).collect();
        List::new(rows, 0..n, 10)
    }

    fn keys(l: &mut List, text: &str) {
        for c in text.chars() {
            l.handle(Key::Char(c));
        }
    }

    #[test]
    fn the_count_follows_every_toggle() {
        let mut l = list(23);
        assert_eq!(l.count(), "23 of 23 selected");
        l.handle(Key::Char(' '));
        assert!(l.render("Untick", "h", 120)[0].contains("22 of 23 selected"));
        l.handle(Key::Down);
        l.handle(Key::Char(' '));
        assert_eq!(l.count(), "21 of 23 selected");
        assert_eq!(l.ticked().len(), 21);
        assert!(!l.ticked().contains(&0) && !l.ticked().contains(&1));
        l.handle(Key::Char(' '));
        assert_eq!(l.count(), "22 of 23 selected");
    }

    #[test]
    fn typing_filters_and_the_toggles_touch_only_what_is_shown() {
        let mut l = list(23);
        keys(&mut l, "012");
        let lines = l.render("Untick", "h", 120);
        assert!(lines[0].contains("filter: 012") && lines[0].contains("(1 shown)"), "{lines:?}");
        assert_eq!(lines.iter().filter(|r| r.contains("[x]")).count(), 1);
        l.handle(Key::Char(' '));
        assert!(!l.ticked().contains(&12));
        for _ in 0..3 {
            l.handle(Key::Backspace);
        }
        // Untick all shown with a filter on: only the shown rows.
        keys(&mut l, "owner3");
        let shown = l.shown.clone();
        assert_eq!(shown.len(), 3, "{shown:?}");
        l.handle(Key::Left);
        assert_eq!(l.count(), format!("{} of 23 selected", 23 - 1 - 3));
        l.handle(Key::Right);
        assert_eq!(l.count(), "22 of 23 selected");
        // A filter nothing matches says so.
        keys(&mut l, "zzz");
        assert!(l.render("Untick", "h", 120).iter().any(|r| r.contains("no item matches")));
        l.handle(Key::Char(' '));
        assert_eq!(l.count(), "22 of 23 selected");
    }

    #[test]
    fn five_hundred_items_page_through() {
        let mut l = list(500);
        let page = |l: &List| l.render("Untick", "h", 100);
        assert!(page(&l).iter().any(|r| r.contains("rows 1–10 of 500 shown")));
        l.handle(Key::PageDown);
        l.handle(Key::PageDown);
        let p = page(&l);
        assert!(p.iter().any(|r| r.starts_with("> [x] Workbook 020")), "{p:?}");
        l.handle(Key::End);
        let p = page(&l);
        assert!(p.iter().any(|r| r.starts_with("> [x] Workbook 499")), "{p:?}");
        assert!(p.iter().any(|r| r.contains("rows 491–500 of 500 shown")), "{p:?}");
        l.handle(Key::Char(' '));
        l.handle(Key::Home);
        assert!(page(&l).iter().any(|r| r.starts_with("> [x] Workbook 000")));
        l.handle(Key::Left);
        assert_eq!(l.count(), "0 of 500 selected");
        l.handle(Key::Right);
        assert_eq!(l.count(), "500 of 500 selected");
        // Never wider than the terminal.
        assert!(page(&l).iter().all(|r| console::measure_text_width(r) <= 100));
        assert!(l.render("Untick", "h", 40).iter().all(|r| console::measure_text_width(r) <= 40));
    }

    #[test]
    fn enter_accepts_esc_goes_back_ctrl_c_quits() {
        let mut l = list(3);
        assert_eq!(l.handle(Key::Enter), Step::Accept);
        assert_eq!(l.handle(Key::Esc), Step::Back);
        assert_eq!(l.handle(Key::Interrupt), Step::Quit);
        assert_eq!(l.handle(Key::Down), Step::Continue);
    }
}
