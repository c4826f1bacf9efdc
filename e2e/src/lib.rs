//! End-to-end tests of a whole cluster. They drive binaries, HTTP and the real kubectl only;
//! they link no component. The cluster launcher they need arrives with issue 9.
