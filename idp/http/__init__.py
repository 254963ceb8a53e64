"""HTTP plumbing: Starlette routes that parse requests and render protocol answers."""
