//! Cluster DNS: answers for the cluster domain from Services, EndpointSlices and pods.
