//! Distinguished names (RFC 4514), parsed so that they compare as a directory compares them:
//! attribute types and values case-insensitively, escapes and spacing resolved.

use std::fmt;

/// A parsed DN. Equality, hashing and ordering use the normalized form; `Display` gives a canonical
/// RFC 4514 string with the original letter case of values. Compact, because the entries of a read
/// are kept between runs: one buffer and one table of RDN offsets, not a tree of strings.
#[derive(Clone, Debug)]
pub struct Dn {
    /// The normalized form, then the display form, then the first RDN's first value.
    text: Box<str>,
    key_len: u32,
    display_len: u32,
    /// Where each RDN starts in the normalized and in the display form, leaf first.
    starts: Box<[(u32, u32)]>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
struct Rdn {
    avas: Vec<Ava>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
struct Ava {
    attr: String,
    value: String,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid DN {dn:?}: {problem}")]
pub struct DnError {
    pub dn: String,
    pub problem: &'static str,
}

impl Dn {
    pub fn parse(text: &str) -> Result<Dn, DnError> {
        if let Some(dn) = Dn::from_plain(text) {
            return Ok(dn);
        }
        let err = |problem| DnError {
            dn: text.to_owned(),
            problem,
        };
        let mut rdns = Vec::new();
        if !text.trim().is_empty() {
            let mut chars = text.chars().peekable();
            loop {
                let mut avas = Vec::new();
                loop {
                    let attr = read_attr(&mut chars)
                        .ok_or(err("an attribute type is missing or malformed"))?;
                    let value = read_value(&mut chars).map_err(err)?;
                    avas.push(Ava { attr, value });
                    match chars.next() {
                        Some('+') => continue,
                        Some(',' | ';') => break,
                        None => break,
                        Some(_) => return Err(err("unexpected character after a value")),
                    }
                }
                avas.sort_by(|a, b| {
                    a.attr
                        .cmp(&b.attr)
                        .then_with(|| a.value.to_lowercase().cmp(&b.value.to_lowercase()))
                });
                rdns.push(Rdn { avas });
                if chars.peek().is_none() {
                    break;
                }
            }
        }
        Ok(Dn::from_rdns(rdns))
    }

    fn from_rdns(rdns: Vec<Rdn>) -> Dn {
        let (mut key, mut display) = (String::new(), String::new());
        let mut starts = Vec::with_capacity(rdns.len());
        for (i, rdn) in rdns.iter().enumerate() {
            if i > 0 {
                key.push(',');
                display.push(',');
            }
            starts.push((offset(&key), offset(&display)));
            for (j, ava) in rdn.avas.iter().enumerate() {
                if j > 0 {
                    key.push('+');
                    display.push('+');
                }
                key.push_str(&ava.attr);
                key.push('=');
                key.push_str(&escape_value(&ava.value.to_lowercase()));
                push_display_attr(&mut display, &ava.attr);
                display.push('=');
                display.push_str(&escape_value(&ava.value));
            }
        }
        let name = rdns
            .first()
            .and_then(|r| r.avas.first())
            .map_or("", |a| a.value.as_str());
        let (key_len, display_len) = (offset(&key), offset(&display));
        Dn {
            text: [key, display, name.to_owned()].concat().into_boxed_str(),
            key_len,
            display_len,
            starts: starts.into_boxed_slice(),
        }
    }

    /// A plain DN (see `is_plain`) without the general parser: most DNs are plain, and a read parses
    /// one per entry. Key, display form and text have the same length, so they share offsets.
    fn from_plain(text: &str) -> Option<Dn> {
        if !is_plain(text) {
            return None;
        }
        let name = plain_rdns(text).next()??.1;
        // Key, display form and name in one buffer of the exact size; a DN of every user is kept.
        let mut buf = String::with_capacity(2 * text.len() + name.len());
        buf.push_str(text);
        buf.make_ascii_lowercase();
        let display_start = buf.len();
        let mut starts = Vec::with_capacity(text.bytes().filter(|&b| b == b',').count() + 1);
        for (i, rdn) in plain_rdns(text).enumerate() {
            if i > 0 {
                buf.push(',');
            }
            let at = offset(&buf[display_start..]);
            starts.push((at, at));
            let (attr, value) = rdn?;
            push_display_attr(&mut buf, attr);
            buf.push('=');
            buf.push_str(value);
        }
        buf.push_str(name);
        let len = offset(text);
        Some(Dn {
            text: buf.into_boxed_str(),
            key_len: len,
            display_len: len,
            starts: starts.into_boxed_slice(),
        })
    }

    fn display(&self) -> &str {
        let start = self.key_len as usize;
        &self.text[start..start + self.display_len as usize]
    }

    /// The normalized form from the `i`th RDN on (empty past the last).
    fn key_from(&self, i: usize) -> &str {
        self.starts
            .get(i)
            .map_or("", |&(k, _)| &self.text[k as usize..self.key_len as usize])
    }

    /// The normalized form: lower case, canonical escaping. Equal DNs have equal keys.
    pub fn key(&self) -> &str {
        &self.text[..self.key_len as usize]
    }

    pub fn is_root(&self) -> bool {
        self.starts.is_empty()
    }

    /// The DN one level up; `None` for the root DSE.
    pub fn parent(&self) -> Option<Dn> {
        let &(_, start) = self.starts.get(1)?;
        // The display form is canonical RFC 4514, so it parses back to the same names.
        Dn::parse(&self.display()[start as usize..]).ok()
    }

    /// True when `self` is `ancestor` or lies below it.
    pub fn is_within(&self, ancestor: &Dn) -> bool {
        let (n, m) = (self.len(), ancestor.len());
        m <= n && self.key_from(n - m) == ancestor.key()
    }

    /// The value of the first RDN: the object's own name (`Engineering` in `CN=Engineering,OU=…`).
    pub fn name(&self) -> Option<&str> {
        let start = (self.key_len + self.display_len) as usize;
        (!self.is_root()).then(|| &self.text[start..])
    }

    /// Depth below the root DSE.
    pub fn len(&self) -> usize {
        self.starts.len()
    }

    pub fn is_empty(&self) -> bool {
        self.starts.is_empty()
    }
}

/// A DN's normalized form alone: all a user's DN is looked at for (member values naming it, the
/// scope's subtrees, renames). A DN of every user is kept, and this is a third of a [`Dn`].
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct DnKey(Box<str>);

impl DnKey {
    pub fn parse(text: &str) -> Result<DnKey, DnError> {
        key_of(text).map(|key| DnKey(key.into_boxed_str()))
    }

    pub fn key(&self) -> &str {
        &self.0
    }

    /// True when the DN is `ancestor` or lies below it: the key ends with the ancestor's after a
    /// comma. That comma separates RDNs: in a key every `,` and `=` inside a value is escaped, so a
    /// value cannot end with `,type=…`.
    pub fn is_within(&self, ancestor: &Dn) -> bool {
        let outer = ancestor.key();
        if outer.is_empty() {
            return true;
        }
        match self.0.strip_suffix(outer) {
            Some(head) => head.is_empty() || head.ends_with(','),
            None => false,
        }
    }
}

/// The normalized form of `text`, as `Dn::parse(text)?.key()` gives it. Member values are many
/// and need only their key: a plain DN is its own key up to letter case, so it is not parsed.
pub fn key_of(text: &str) -> Result<String, DnError> {
    if is_plain(text) {
        return Ok(text.to_ascii_lowercase());
    }
    Dn::parse(text).map(|dn| dn.key().to_owned())
}

/// [`key_of`] for a value that is not needed afterwards: a plain DN becomes its key in its own
/// buffer. A value that is not a DN comes back as it was.
pub fn into_key(mut text: String) -> Result<String, String> {
    if is_plain(&text) {
        text.make_ascii_lowercase();
        return Ok(text);
    }
    key_of(&text).map_err(|_| text)
}

/// ASCII, one `type=value` per RDN, nothing escaped, quoted or to be escaped, and no spaces around
/// separators: what `escape_value` would write back unchanged. Every member value of every group
/// is checked, so RDNs are split on bytes, not with `str::split`.
fn is_plain(text: &str) -> bool {
    !text.is_empty() && text.is_ascii() && plain_rdns(text).all(|rdn| rdn.is_some())
}

/// The `(type, value)` of each RDN of an ASCII DN, `None` for one that is not plain. Splits on
/// bytes: `str::split` searches for a char with a set-up cost that DNs this short do not repay.
fn plain_rdns(text: &str) -> impl Iterator<Item = Option<(&str, &str)>> {
    let mut start = 0;
    std::iter::from_fn(move || {
        let rest = text.as_bytes().get(start..)?;
        let end = start + rest.iter().position(|&b| b == b',').unwrap_or(rest.len());
        let rdn = &text[start..end];
        start = end + 1;
        Some(plain_rdn(rdn))
    })
}

fn plain_rdn(rdn: &str) -> Option<(&str, &str)> {
    let bytes = rdn.as_bytes();
    let eq = bytes
        .iter()
        .position(|&b| !(b.is_ascii_alphanumeric() || b == b'-' || b == b'.'))?;
    let value = &bytes[eq + 1..];
    let plain = eq > 0
        && bytes[eq] == b'='
        && !value.is_empty()
        && !matches!(value[0], b' ' | b'#')
        && value[value.len() - 1] != b' '
        && !value
            .iter()
            .any(|b| matches!(b, b'\\' | b'"' | b'+' | b';' | b'<' | b'>' | b'=' | 0));
    plain.then(|| (&rdn[..eq], &rdn[eq + 1..]))
}

/// A length or position in a DN's text; DNs are far shorter than 4 GiB.
fn offset(text: &str) -> u32 {
    u32::try_from(text.len()).unwrap_or(u32::MAX)
}

impl PartialEq for Dn {
    fn eq(&self, other: &Self) -> bool {
        self.key() == other.key()
    }
}

impl Eq for Dn {}

impl std::hash::Hash for Dn {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.key().hash(state);
    }
}

impl PartialOrd for Dn {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Dn {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.key().cmp(other.key())
    }
}

impl fmt::Display for Dn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.display())
    }
}

/// Attribute types (ASCII) print in upper case when short (CN, OU, DC), as Active Directory writes
/// them, and in lower case otherwise.
fn push_display_attr(out: &mut String, attr: &str) {
    let short = attr.len() <= 2;
    out.extend(attr.chars().map(|c| match short {
        true => c.to_ascii_uppercase(),
        false => c.to_ascii_lowercase(),
    }));
}

type Chars<'a> = std::iter::Peekable<std::str::Chars<'a>>;

fn skip_spaces(chars: &mut Chars) {
    while chars.peek() == Some(&' ') {
        chars.next();
    }
}

fn read_attr(chars: &mut Chars) -> Option<String> {
    skip_spaces(chars);
    let mut attr = String::new();
    while let Some(&c) = chars.peek() {
        if c.is_ascii_alphanumeric() || c == '-' || c == '.' {
            attr.push(c.to_ascii_lowercase());
            chars.next();
        } else {
            break;
        }
    }
    skip_spaces(chars);
    (chars.next() == Some('=') && !attr.is_empty()).then_some(attr)
}

fn read_value(chars: &mut Chars) -> Result<String, &'static str> {
    skip_spaces(chars);
    if chars.peek() == Some(&'"') {
        chars.next();
        let mut value = String::new();
        loop {
            match chars.next() {
                Some('"') => break,
                Some('\\') => value.push(chars.next().ok_or("a quoted value ends in an escape")?),
                Some(c) => value.push(c),
                None => return Err("a quoted value is not closed"),
            }
        }
        skip_spaces(chars);
        return Ok(value);
    }
    let mut bytes: Vec<u8> = Vec::new();
    // Unescaped trailing spaces are insignificant; escaped ones are kept.
    let mut significant_len = 0;
    while let Some(&c) = chars.peek() {
        match c {
            ',' | ';' | '+' => break,
            '\\' => {
                chars.next();
                let first = chars.next().ok_or("a value ends in an escape")?;
                if first.is_ascii_hexdigit() {
                    let second = chars
                        .next()
                        .filter(char::is_ascii_hexdigit)
                        .ok_or("a hex escape needs two digits")?;
                    let hex: String = [first, second].iter().collect();
                    bytes.push(u8::from_str_radix(&hex, 16).map_err(|_| "bad hex escape")?);
                } else {
                    let mut buf = [0; 4];
                    bytes.extend_from_slice(first.encode_utf8(&mut buf).as_bytes());
                }
                significant_len = bytes.len();
            }
            _ => {
                chars.next();
                let mut buf = [0; 4];
                bytes.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
                if c != ' ' {
                    significant_len = bytes.len();
                }
            }
        }
    }
    bytes.truncate(significant_len);
    String::from_utf8(bytes).map_err(|_| "a value is not valid UTF-8")
}

/// Escapes an attribute value for a DN string (RFC 4514 section 2.4).
pub fn escape_value(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    let last = value.chars().count().saturating_sub(1);
    for (i, c) in value.chars().enumerate() {
        let needs = matches!(c, '\\' | ',' | '+' | '"' | '<' | '>' | ';' | '=')
            || (i == 0 && (c == ' ' || c == '#'))
            || (i == last && c == ' ');
        if needs {
            out.push('\\');
        }
        if c == '\0' {
            out.push_str("\\00");
        } else {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod properties;

#[cfg(test)]
mod tests {
    use super::*;

    fn dn(s: &str) -> Dn {
        Dn::parse(s).unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn case_and_spacing_do_not_matter() {
        assert_eq!(
            dn("CN=John Doe,OU=Staff,DC=corp,DC=example,DC=com"),
            dn("cn=john doe, ou=STAFF ,dc=Corp,dc=example,dc=com")
        );
        assert_ne!(dn("CN=John Doe,OU=Staff"), dn("CN=John  Doe,OU=Staff"));
    }

    #[test]
    fn escapes_are_resolved_in_every_spelling() {
        let a = dn(r"CN=Research\, Development \+ Test,OU=Groups");
        let b = dn(r"CN=Research\2C Development \2B Test,OU=Groups");
        let c = dn(r#"CN="Research, Development + Test",OU=Groups"#);
        assert_eq!(a, b);
        assert_eq!(a, c);
        assert_eq!(a.name(), Some("Research, Development + Test"));
        assert_eq!(
            a.to_string(),
            r"CN=Research\, Development \+ Test,OU=Groups"
        );
        assert_eq!(
            dn(r"CN=Tricky *)(uid\3D*,OU=G"),
            dn(r"CN=Tricky *)(uid\=*,OU=G")
        );
    }

    #[test]
    fn utf8_hex_escapes_decode() {
        assert_eq!(
            dn(r"CN=\C3\9A\C4\8Dtovn\C3\ADctvo,DC=x").name(),
            Some("Účtovníctvo")
        );
        assert_eq!(dn("CN=Účtovníctvo,DC=x"), dn("cn=účtovníctvo,dc=X"));
    }

    #[test]
    fn escaped_trailing_space_is_kept_and_plain_one_dropped() {
        assert_eq!(dn(r"CN=trail\ ,DC=x").name(), Some("trail "));
        assert_eq!(dn("CN=trail ,DC=x").name(), Some("trail"));
    }

    #[test]
    fn multi_valued_rdns_compare_in_any_order() {
        assert_eq!(dn("cn=a+uid=b,dc=x"), dn("UID=b+CN=A,DC=x"));
    }

    #[test]
    fn ancestry() {
        let base = dn("DC=corp,DC=example,DC=com");
        let user = dn("CN=J,OU=Staff,DC=Corp,DC=example,DC=com");
        assert!(user.is_within(&base));
        assert!(base.is_within(&base));
        assert!(!base.is_within(&user));
        assert!(!dn("DC=notcorp,DC=example,DC=com").is_within(&base));
        assert!(user.is_within(&dn("")));
        assert_eq!(
            user.parent(),
            Some(dn("OU=Staff,DC=corp,DC=example,DC=com"))
        );
        assert_eq!(dn("").parent(), None);
    }

    #[test]
    fn keys_without_parsing_match_parsed_keys() {
        for text in [
            "CN=John Doe,OU=Staff,DC=corp,DC=example,DC=com",
            "Cn=John Doe,ou=Staff,dc=corp",
            "uid=jdoe,ou=people,dc=example,dc=org",
            "cn=john doe, ou=STAFF ,dc=Corp",
            r"CN=Research\, Development,OU=Groups",
            r#"CN="quoted",DC=x"#,
            "cn=a+uid=b,dc=x",
            "cn=a=b,dc=x",
            "CN=Účtovníctvo,DC=x",
            "CN=trail ,DC=x",
            "CN= lead,DC=x",
            "CN=#hash,DC=x",
            "cn=a;dc=x",
            "",
            "2.5.4.3=x,dc=y",
            "cn=a,",
            "cn=a,,dc=x",
            "cn=,dc=x",
            "=a,dc=x",
            "cn a=b,dc=x",
            "cn=a\u{0},dc=x",
        ] {
            assert_eq!(
                key_of(text).ok(),
                Dn::parse(text).ok().map(|d| d.key().to_owned()),
                "{text:?}"
            );
            // The plain path builds the same DN as the general parser.
            if let Some(plain) = Dn::from_plain(text) {
                let general = Dn::parse(&format!(" {text}")).expect("parses");
                assert_eq!(plain.key(), general.key(), "{text:?}");
                assert_eq!(plain.to_string(), general.to_string(), "{text:?}");
                assert_eq!(plain.name(), general.name(), "{text:?}");
                assert_eq!(plain.len(), general.len(), "{text:?}");
                assert_eq!(plain.parent(), general.parent(), "{text:?}");
            }
        }
        assert!(key_of("CN").is_err());
    }

    #[test]
    fn malformed_dns_are_errors() {
        for bad in ["CN", "=x", "CN=a\\", "CN=a\\4", "CN=\"open", "CN=a,=b"] {
            assert!(Dn::parse(bad).is_err(), "{bad}");
        }
    }
}
