// smstext.js
