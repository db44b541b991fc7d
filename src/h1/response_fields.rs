//! The header fields of one response, as the handler sets them.
//!
//! A handler that only sets fields one by one
//! ([`ResponseWriter::insert_header`](crate::ResponseWriter::insert_header))
//! gets a short list: a `HeaderMap` insert hashes the name and probes a
//! table, and clearing the map for the next response walks it again, which
//! together cost about as much as encoding the whole head. The fields move
//! into a map the first time the handler asks for one
//! ([`map_mut`](ResponseFields::map_mut)), and stay there for the rest of
//! the response; reading them as a map ([`map`](ResponseFields::map)) while
//! they are listed builds a copy, kept until the next change.

use std::sync::OnceLock;

use http::{HeaderMap, HeaderName, HeaderValue};

/// The most fields kept in the list: one more moves them all into the map.
const LIST_MAX: usize = 16;

/// The fields of the current response: in `list` or in `map`, never in
/// both (while `list` has fields, `map` is empty). Reused from response to
/// response ([`clear`](Self::clear) keeps the allocations).
#[derive(Debug, Default)]
pub(crate) struct ResponseFields {
    /// Fields set one by one while `map` is empty: one entry per name, in
    /// the order the names were first set.
    list: Vec<(HeaderName, HeaderValue)>,
    /// The fields, once the handler asked for the map.
    map: HeaderMap,
    /// A map of `list`, built when the handler reads the fields as a map
    /// while they are listed.
    shown: OnceLock<HeaderMap>,
}

impl ResponseFields {
    /// Forgets every field, keeping the allocations.
    pub(crate) fn clear(&mut self) {
        self.list.clear();
        if !self.map.is_empty() {
            self.map.clear();
        }
        self.shown = OnceLock::new();
    }

    /// Sets `name` to `value`, replacing its earlier values (as
    /// `HeaderMap::insert` does, in the name's first place).
    pub(crate) fn insert(&mut self, name: HeaderName, value: HeaderValue) {
        if !self.map.is_empty() {
            self.map.insert(name, value);
            return;
        }
        self.shown = OnceLock::new();
        let full = self.list.len() >= LIST_MAX;
        match self.list.iter_mut().find(|(listed, _)| *listed == name) {
            Some((_, listed)) => *listed = value,
            // Each insert scans the list: past a few fields, a map is
            // cheaper.
            None if full => {
                self.map_mut().insert(name, value);
            }
            None => self.list.push((name, value)),
        }
    }

    /// The fields as a map.
    pub(crate) fn map(&self) -> &HeaderMap {
        if self.list.is_empty() {
            return &self.map;
        }
        self.shown.get_or_init(|| {
            let mut shown = HeaderMap::with_capacity(self.list.len());
            for (name, value) in &self.list {
                shown.insert(name.clone(), value.clone());
            }
            shown
        })
    }

    /// The fields as a map to change: listed fields move into it first.
    pub(crate) fn map_mut(&mut self) -> &mut HeaderMap {
        if !self.list.is_empty() {
            self.shown = OnceLock::new();
            self.map.reserve(self.list.len());
            for (name, value) in self.list.drain(..) {
                self.map.insert(name, value);
            }
        }
        &mut self.map
    }

    /// The first value of `name`.
    pub(crate) fn get(&self, name: &HeaderName) -> Option<&HeaderValue> {
        match self.list.iter().find(|(listed, _)| listed == name) {
            Some((_, value)) => Some(value),
            None => self.map.get(name),
        }
    }

    /// Every field, in order: names repeat for a name with several values.
    pub(crate) fn iter(&self) -> impl Iterator<Item = (&HeaderName, &HeaderValue)> {
        self.list
            .iter()
            .map(|(name, value)| (name, value))
            .chain(self.map.iter())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::header::{CONTENT_TYPE, SET_COOKIE};

    fn listed(fields: &ResponseFields) -> Vec<(String, String)> {
        fields
            .iter()
            .map(|(name, value)| (name.to_string(), value.to_str().unwrap().to_owned()))
            .collect()
    }

    fn value(v: &'static str) -> HeaderValue {
        HeaderValue::from_static(v)
    }

    /// The same steps on a `HeaderMap` and on `ResponseFields` leave the
    /// same fields, in the same order, whichever way they are read.
    #[test]
    fn fields_behave_as_a_header_map_would() {
        let x_a = HeaderName::from_static("x-a");
        let mut fields = ResponseFields::default();
        let mut model = HeaderMap::new();
        let steps: [(HeaderName, &'static str); 4] = [
            (CONTENT_TYPE, "text/plain"),
            (x_a.clone(), "1"),
            (CONTENT_TYPE, "text/html"),
            (x_a.clone(), "2"),
        ];
        for (name, v) in steps {
            fields.insert(name.clone(), value(v));
            model.insert(name, value(v));
            assert_eq!(fields.map(), &model);
            assert_eq!(fields.get(&CONTENT_TYPE), model.get(&CONTENT_TYPE));
        }
        assert_eq!(
            listed(&fields),
            [("content-type", "text/html"), ("x-a", "2")].map(|(n, v)| (n.into(), v.into()))
        );

        // Into the map: several values per name from now on.
        fields.map_mut().append(SET_COOKIE, value("a=1"));
        model.append(SET_COOKIE, value("a=1"));
        fields.insert(SET_COOKIE, value("b=2"));
        model.insert(SET_COOKIE, value("b=2"));
        fields.map_mut().append(SET_COOKIE, value("c=3"));
        model.append(SET_COOKIE, value("c=3"));
        assert_eq!(fields.map(), &model);
        assert_eq!(listed(&fields).len(), 4);

        fields.clear();
        assert!(fields.map().is_empty() && fields.iter().next().is_none());
        fields.insert(x_a.clone(), value("3"));
        assert_eq!(listed(&fields), [("x-a".into(), "3".into())]);
        assert_eq!(fields.map().len(), 1);
        // A map emptied by the handler takes listed fields again.
        fields.map_mut().clear();
        fields.insert(x_a, value("4"));
        assert_eq!(listed(&fields), [("x-a".into(), "4".into())]);
    }

    #[test]
    fn many_fields_move_into_the_map_in_their_order() {
        let mut fields = ResponseFields::default();
        let names: Vec<HeaderName> = (0..40)
            .map(|i| HeaderName::try_from(format!("x-{i}")).unwrap())
            .collect();
        for name in &names {
            fields.insert(name.clone(), value("v"));
        }
        assert!(fields.list.is_empty() && fields.map.len() == 40);
        let order: Vec<&HeaderName> = fields.iter().map(|(name, _)| name).collect();
        assert_eq!(order, names.iter().collect::<Vec<_>>());
    }
}
