//! `COPY ... FROM STDIN` in PostgreSQL's text format: rows are encoded into a buffer and sent in chunks of
//! about a megabyte, so a table of a few hundred thousand rows costs one statement and little memory.
//!
//! Text rather than binary: `numeric`, `jsonb` and `time` columns are written as PostgreSQL reads them from
//! SQL, with no per-type wire encoding to get wrong.

use std::pin::Pin;

use anyhow::{Context, Result};
use bytes::Bytes;
use chrono::{NaiveDate, NaiveDateTime, NaiveTime};
use futures::SinkExt;
use tokio_postgres::{Client, CopyInSink};

/// Bytes buffered before they are sent.
const CHUNK: usize = 1 << 20;

/// One running `COPY table (columns) FROM STDIN`.
pub struct Copy {
    /// The table, for error messages.
    table: &'static str,
    /// The COPY's data stream.
    sink: Pin<Box<CopyInSink<Bytes>>>,
    /// Encoded rows not sent yet.
    buffer: Vec<u8>,
}

impl Copy {
    /// Starts copying into `table`'s `columns` (as SQL lists them: `"id, name, active"`); the other columns get
    /// their defaults.
    pub async fn start(client: &Client, table: &'static str, columns: &str) -> Result<Copy> {
        let sql = format!("copy {table} ({columns}) from stdin");
        let sink = client.copy_in(&sql).await.with_context(|| format!("starting {sql}"))?;
        Ok(Copy { table, sink: Box::pin(sink), buffer: Vec::with_capacity(CHUNK + 4096) })
    }

    /// A new row; call [`Row::end`] when its fields are written.
    pub fn row(&mut self) -> Row<'_> {
        Row { buffer: &mut self.buffer, first: true }
    }

    /// Sends the buffer if it is full.
    pub async fn flush_if_full(&mut self) -> Result<()> {
        if self.buffer.len() >= CHUNK {
            let chunk = Bytes::from(std::mem::replace(&mut self.buffer, Vec::with_capacity(CHUNK + 4096)));
            self.sink.send(chunk).await.with_context(|| format!("copying into {}", self.table))?;
        }
        Ok(())
    }

    /// Sends the rest and ends the COPY; returns the rows copied.
    pub async fn finish(mut self) -> Result<u64> {
        if !self.buffer.is_empty() {
            let chunk = Bytes::from(std::mem::take(&mut self.buffer));
            self.sink.send(chunk).await.with_context(|| format!("copying into {}", self.table))?;
        }
        self.sink.as_mut().finish().await.with_context(|| format!("finishing the copy into {}", self.table))
    }
}

/// The fields of one row, in the order of the COPY's columns.
pub struct Row<'a> {
    /// The copy's buffer.
    buffer: &'a mut Vec<u8>,
    /// No field written yet (no tab before the next one).
    first: bool,
}

impl Row<'_> {
    fn separate(&mut self) {
        if !self.first {
            self.buffer.push(b'\t');
        }
        self.first = false;
    }

    /// An integer.
    pub fn int(&mut self, value: impl Into<i64>) -> &mut Self {
        self.separate();
        self.buffer.extend_from_slice(value.into().to_string().as_bytes());
        self
    }

    /// A 0/1 flag, the way the booking system stores every flag.
    pub fn flag(&mut self, value: bool) -> &mut Self {
        self.int(i32::from(value))
    }

    /// NULL.
    pub fn null(&mut self) -> &mut Self {
        self.separate();
        self.buffer.extend_from_slice(b"\\N");
        self
    }

    /// An integer or NULL.
    pub fn opt_int(&mut self, value: Option<impl Into<i64>>) -> &mut Self {
        match value {
            Some(value) => self.int(value),
            None => self.null(),
        }
    }

    /// Text, escaped for the COPY text format.
    pub fn text(&mut self, value: &str) -> &mut Self {
        self.separate();
        for byte in value.bytes() {
            match byte {
                b'\\' => self.buffer.extend_from_slice(b"\\\\"),
                b'\t' => self.buffer.extend_from_slice(b"\\t"),
                b'\n' => self.buffer.extend_from_slice(b"\\n"),
                b'\r' => self.buffer.extend_from_slice(b"\\r"),
                other => self.buffer.push(other),
            }
        }
        self
    }

    /// Text or NULL.
    pub fn opt_text(&mut self, value: Option<&str>) -> &mut Self {
        match value {
            Some(value) => self.text(value),
            None => self.null(),
        }
    }

    /// An amount in øre as `numeric(10,2)` kroner.
    pub fn money(&mut self, ore: i64) -> &mut Self {
        self.separate();
        self.buffer.extend_from_slice(format!("{}.{:02}", ore / 100, ore % 100).as_bytes());
        self
    }

    /// A `timestamp without time zone`.
    pub fn timestamp(&mut self, value: NaiveDateTime) -> &mut Self {
        self.separate();
        self.buffer.extend_from_slice(value.format("%Y-%m-%d %H:%M:%S").to_string().as_bytes());
        self
    }

    /// A `date`.
    pub fn date(&mut self, value: NaiveDate) -> &mut Self {
        self.separate();
        self.buffer.extend_from_slice(value.format("%Y-%m-%d").to_string().as_bytes());
        self
    }

    /// A `time`.
    pub fn time(&mut self, value: NaiveTime) -> &mut Self {
        self.separate();
        self.buffer.extend_from_slice(value.format("%H:%M:%S").to_string().as_bytes());
        self
    }

    /// Ends the row.
    pub fn end(&mut self) {
        self.buffer.push(b'\n');
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_fields_are_escaped_and_separated() {
        let mut buffer = Vec::new();
        let mut row = Row { buffer: &mut buffer, first: true };
        row.int(7).text("a\tb\\c\nd").null().money(45_050).flag(true).end();
        assert_eq!(String::from_utf8_lossy(&buffer), "7\ta\\tb\\\\c\\nd\t\\N\t450.50\t1\n");
    }
}
