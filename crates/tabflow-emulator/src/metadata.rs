//! Metadata API (GraphQL) over a site (being written).
