//! `pageSize` / `pageNumber` and the `<pagination>` element (Tableau's paging concepts page).

use crate::ApiError;

/// Tableau's default page size.
pub const DEFAULT_PAGE_SIZE: u32 = 100;
/// The largest page size Tableau accepts.
pub const MAX_PAGE_SIZE: u32 = 1000;

/// A validated page request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PageRequest {
    pub page_number: u32,
    pub page_size: u32,
}

impl Default for PageRequest {
    fn default() -> Self {
        PageRequest { page_number: 1, page_size: DEFAULT_PAGE_SIZE }
    }
}

impl PageRequest {
    /// Parses the raw query values. Errors are Tableau's: 400007 for a bad size, 400006 for a
    /// bad number.
    pub fn parse(page_size: Option<&str>, page_number: Option<&str>) -> Result<PageRequest, ApiError> {
        let page_size = match page_size {
            None => DEFAULT_PAGE_SIZE,
            Some(s) => match s.trim().parse::<u32>() {
                Ok(n) if (1..=MAX_PAGE_SIZE).contains(&n) => n,
                _ => {
                    return Err(ApiError::invalid_page_size(format!(
                        "Page size parameter '{s}' is invalid. It should be between 1 and {MAX_PAGE_SIZE}."
                    )));
                }
            },
        };
        let page_number = match page_number {
            None => 1,
            Some(s) => match s.trim().parse::<u32>() {
                Ok(n) if n >= 1 => n,
                _ => {
                    return Err(ApiError::invalid_page_number(format!(
                        "Page number parameter '{s}' is invalid. It should be a positive integer."
                    )));
                }
            },
        };
        Ok(PageRequest { page_number, page_size })
    }

    /// The index range of this page within `total` items. A page past the end is 400006,
    /// except page 1 of an empty list, which is an empty page.
    pub fn window(&self, total: usize) -> Result<std::ops::Range<usize>, ApiError> {
        let start = (self.page_number as usize - 1) * self.page_size as usize;
        if start >= total && !(self.page_number == 1 && total == 0) {
            return Err(ApiError::invalid_page_number(format!(
                "Page number '{}' is larger than the number of pages ({}).",
                self.page_number,
                total.div_ceil(self.page_size as usize)
            )));
        }
        Ok(start..(start + self.page_size as usize).min(total))
    }

    /// The `<pagination>` values for a list of `total` items.
    pub fn pagination(&self, total: usize) -> crate::xml::Pagination {
        crate::xml::Pagination {
            page_number: self.page_number.to_string(),
            page_size: self.page_size.to_string(),
            total_available: total.to_string(),
        }
    }
}

#[cfg(test)]
#[allow(clippy::indexing_slicing, clippy::unwrap_used, reason = "tests: a panic is a failure")]
mod tests {
    use super::*;

    #[test]
    fn parse_bounds() {
        assert_eq!(PageRequest::parse(None, None).unwrap(), PageRequest::default());
        assert_eq!(PageRequest::parse(Some("1000"), Some("3")).unwrap().page_size, 1000);
        assert_eq!(PageRequest::parse(Some("1001"), None).unwrap_err().code, "400007");
        assert_eq!(PageRequest::parse(Some("0"), None).unwrap_err().code, "400007");
        assert_eq!(PageRequest::parse(None, Some("0")).unwrap_err().code, "400006");
        assert_eq!(PageRequest::parse(None, Some("x")).unwrap_err().code, "400006");
    }

    #[test]
    fn windows() {
        let p = PageRequest { page_number: 2, page_size: 10 };
        assert_eq!(p.window(25).unwrap(), 10..20);
        let p = PageRequest { page_number: 3, page_size: 10 };
        assert_eq!(p.window(25).unwrap(), 20..25);
        let p = PageRequest { page_number: 4, page_size: 10 };
        assert_eq!(p.window(25).unwrap_err().code, "400006");
        let p = PageRequest { page_number: 1, page_size: 10 };
        assert_eq!(p.window(0).unwrap(), 0..0);
        let p = PageRequest { page_number: 2, page_size: 10 };
        assert!(p.window(0).is_err());
    }
}
