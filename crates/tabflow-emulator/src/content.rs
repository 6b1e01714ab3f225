//! .twb/.tds content and multipart bodies (being written).
